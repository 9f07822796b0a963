/** What the point-in-time recovery tests share: a database's whole contents, `npm run restore` as a person runs it, and a ready item. */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import path from "node:path";
import { Readable } from "node:stream";
import { sql } from "kysely";
import { nanoid } from "nanoid";
import { openServer } from "../../lib/backups/mysql-dump";
import type { SignedUpMember } from "./http-client";
import type { RunningNode } from "./nodes";
import { sha256 } from "./uploads";

const ROOT = path.resolve(__dirname, "../..");

/** Every table of a database on the server at `adminUrl`, every row, in primary-key order. */
export async function contentsOf(adminUrl: string, database: string): Promise<Record<string, unknown[]>> {
  const db = openServer(adminUrl, database, 1);
  try {
    const { rows: tables } = await sql<{ name: string }>`select table_name as name from information_schema.tables where table_schema = ${database} and table_type = 'BASE TABLE' order by table_name`.execute(db);
    const contents: Record<string, unknown[]> = {};
    for (const { name } of tables) contents[name] = (await sql`select * from ${sql.table(name)} order by 1`.execute(db)).rows;
    return contents;
  } finally {
    await db.destroy();
  }
}

/** `npm run restore` (the script itself, without the build) with a node's environment. */
export function restoreCommand(env: Record<string, string>, args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(path.join(ROOT, "node_modules/.bin/tsx"), ["scripts/restore.ts", ...args], {
      cwd: ROOT,
      env: { ...process.env, ...env, LOG_LEVEL: "error" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.on("close", (code) => resolve({ code, output }));
  });
}

/** An item of `owner` as upload and processing leave it (on a node that runs no workers). */
export async function readyItem(node: RunningNode, owner: SignedUpMember): Promise<string> {
  const id = nanoid();
  const content = randomBytes(64);
  const originalKey = `media/${id}/original.jpg`;
  await node.runtime.storage.put(originalKey, Readable.from([content]), "image/jpeg");
  const meta = { meta: { user: { id: owner.id, role: "user", username: owner.username } } };
  await node.broker.call("media.create", { id, ownerId: owner.id, kind: "image", mime: "image/jpeg", bytes: content.length, sha256: sha256(content), originalKey }, meta);
  await node.broker.call("media.claimProcessing", { id });
  await node.broker.call("media.completeProcessing", { id, width: 32, height: 32 });
  return id;
}
