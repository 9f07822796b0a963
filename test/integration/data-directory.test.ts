/**
 * The embedded node's data directory (accounts, sessions, the secret, uploads) is its owner's
 * alone: a real node is started on a new directory and on one left open by an earlier version.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { startNode, stopAllNodes, stopNode } from "../support/nodes";

const DATABASE_FILES = ["membership.sqlite", "media.sqlite", "site.sqlite"];

let parent: string;

function modeOf(file: string): string {
  return (fs.statSync(file).mode & 0o777).toString(8);
}

/** Every SQLite file of the directory (databases, -wal, -shm) with its mode. */
function sqliteModes(directory: string): Record<string, string> {
  const files = fs.readdirSync(directory).filter((name) => /\.sqlite(-wal|-shm|-journal)?$/.test(name));
  return Object.fromEntries(files.map((name) => [name, modeOf(path.join(directory, name))]));
}

beforeAll(() => {
  parent = fs.mkdtempSync(path.join(os.tmpdir(), "shoal-datadir-"));
});

afterAll(async () => {
  await stopAllNodes();
  fs.rmSync(parent, { recursive: true, force: true });
});

test("a new data directory is made 0700 and its SQLite files (with -wal and -shm) 0600, whatever the umask", async () => {
  const dataDir = path.join(parent, "fresh", "data");
  const umask = process.umask(0);
  const starting = startNode({ SHOAL_DATA_DIR: dataDir, SERVICES: "users,media,site" });
  const node = await starting.finally(() => process.umask(umask));
  // A write, so that every database has its write-ahead log and shared-memory files.
  await node.broker.call("users.create", { username: "modes", email: "modes@example.test" });

  expect(modeOf(dataDir)).toBe("700");
  const modes = sqliteModes(dataDir);
  for (const name of DATABASE_FILES) {
    expect(modes).toMatchObject({ [name]: "600", [`${name}-wal`]: "600", [`${name}-shm`]: "600" });
  }
  expect(Object.values(modes).every((mode) => mode === "600")).toBe(true);
  await stopNode(node);
});

test("a data directory open to others is restricted, with a warning, and so are the SQLite files in it", async () => {
  const dataDir = path.join(parent, "old");
  fs.mkdirSync(dataDir);
  fs.chmodSync(dataDir, 0o755);
  // Left by an earlier version: SQLite's default 0644, with a write-ahead log beside it.
  for (const name of ["media.sqlite", "media.sqlite-wal"]) {
    fs.writeFileSync(path.join(dataDir, name), "");
    fs.chmodSync(path.join(dataDir, name), 0o644);
  }
  const emitWarning = jest.spyOn(process, "emitWarning").mockImplementation(() => undefined);
  try {
    const node = await startNode({ SHOAL_DATA_DIR: dataDir, SERVICES: "users,media,site" });
    expect(modeOf(dataDir)).toBe("700");
    // While the node runs: SQLite removes the write-ahead log when it closes.
    expect(sqliteModes(dataDir)).toMatchObject({ "media.sqlite": "600", "media.sqlite-wal": "600" });
    await stopNode(node);
    expect(emitWarning).toHaveBeenCalledWith(expect.stringContaining(`${dataDir} was open to other accounts (mode 0755)`), {
      code: "SHOAL_DATA_DIR_MODE",
    });
  } finally {
    emitWarning.mockRestore();
  }
});
