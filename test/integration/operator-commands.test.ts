import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { ServiceBroker } from "moleculer";
import { envFor, startServices } from "../../scripts/services";
import type { TestServices } from "../../scripts/services";
import { replCommands } from "../../scripts/repl-commands";
import { eventually, startNode, stopAllNodes, stopNode } from "../support/nodes";
import type { RunningNode } from "../support/nodes";

const PROJECT_ROOT = path.resolve(__dirname, "../..");
const PASSWORD_LINE = /^Password \(shown only this once; sign in and change it\): (\S+)$/m;

interface Outcome {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the real `user:create` command (from source, as `npm run user:create` runs its build) with only the given settings. */
function userCreate(args: readonly string[], env: Record<string, string>, stdin?: string): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", "scripts/user-create.ts", ...args], {
      cwd: PROJECT_ROOT,
      env: { PATH: process.env.PATH ?? "", HOME: os.homedir(), TMPDIR: os.tmpdir(), ...env },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
    child.once("error", reject);
    child.once("close", (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(stdin);
  });
}

function lines(text: string): string[] {
  return text.split("\n").filter((line) => line.trim() !== "");
}

async function signIn(node: RunningNode, login: string, password: string): Promise<{ status: number; token?: string }> {
  const answer = await fetch(`${node.baseUrl}/api/auth/login`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ login, password }),
  });
  const body = (await answer.json()) as { token?: string };
  return { status: answer.status, token: body.token };
}

/** Signs in through the API and returns the account as /api/users/me shows it. */
async function signInAndFetchMe(node: RunningNode, login: string, password: string): Promise<{ username: string; role: string }> {
  // In a cluster the sign-in may read a replica that has not yet applied the new account.
  const { status, token } = await eventually(() => signIn(node, login, password), (answer) => answer.status === 200, 10_000);
  expect(status).toBe(200);
  const me = await fetch(`${node.baseUrl}/api/users/me`, { headers: { Authorization: `Bearer ${token ?? ""}` } });
  expect(me.status).toBe(200);
  return ((await me.json()) as { user: { username: string; role: string } }).user;
}

type ReplAction = (broker: ServiceBroker, args: { readonly [name: string]: unknown }) => Promise<void>;

/** Runs the REPL's user-create command as moleculer-repl would, and returns what it printed. */
async function replUserCreate(broker: ServiceBroker, args: { readonly [name: string]: unknown }): Promise<{ out: string[]; err: string[] }> {
  const command = replCommands.find((candidate) => candidate.command.startsWith("user-create "));
  if (command === undefined) throw new Error("the REPL has no user-create command");
  const out: string[] = [];
  const err: string[] = [];
  const log = jest.spyOn(console, "log").mockImplementation((...parts: unknown[]) => void out.push(parts.join(" ")));
  const error = jest.spyOn(console, "error").mockImplementation((...parts: unknown[]) => void err.push(parts.join(" ")));
  try {
    await (command.action as ReplAction)(broker, args);
  } finally {
    log.mockRestore();
    error.mockRestore();
  }
  return { out, err };
}

describe("embedded", () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "shoal-operator-"));
  const env = { SHOAL_MODE: "embedded", SHOAL_DATA_DIR: dataDir };
  let node: RunningNode | undefined;

  afterAll(async () => {
    await stopAllNodes();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  const runningNode = (): RunningNode => {
    if (node === undefined) throw new Error("the node of the first test did not start");
    return node;
  };

  test("user:create --admin makes the first admin; the password it prints once signs in", async () => {
    const created = await userCreate(["--admin", "--username", "root", "--email", "root@example.test"], env);
    expect(created).toMatchObject({ code: 0, stderr: "" });
    const password = PASSWORD_LINE.exec(created.stdout)?.[1];
    expect(password).toBeDefined();
    expect(created.stdout.split(password!).length - 1).toBe(1);
    expect(lines(created.stdout)[0]).toMatch(/^Created admin account root <root@example\.test> \(id [0-9A-Z]{26}\)\.$/);

    node = await startNode({ SHOAL_DATA_DIR: dataDir });
    expect(await signInAndFetchMe(node, "root", password!)).toMatchObject({ username: "root", role: "admin" });
  });

  test("the same username again: exit 1 and one line naming the field", async () => {
    const again = await userCreate(["--username", "ROOT", "--email", "someone-else@example.test"], env);
    expect(again.code).toBe(1);
    expect(again.stdout).toBe("");
    expect(lines(again.stderr)).toEqual([expect.stringMatching(/^user-create: .*\(username: is taken\)$/)]);
  });

  test("an unknown option: exit 2 and one line naming it", async () => {
    const wrong = await userCreate(["--admin", "--user", "x", "--email", "x@example.test"], env);
    expect(wrong.code).toBe(2);
    expect(lines(wrong.stderr)).toEqual([expect.stringMatching(/^user-create: unknown option --user /)]);
  });

  test("--password-stdin: a weak password is refused naming the field; a good one is used and not printed", async () => {
    const weak = await userCreate(["--username", "bob", "--email", "bob@example.test", "--password-stdin"], env, "bob12345\n");
    expect(weak.code).toBe(1);
    expect(lines(weak.stderr)).toEqual([expect.stringMatching(/^user-create: .*\(password: .+\)$/)]);

    const chosen = "correct horse battery staple";
    const created = await userCreate(["--username", "bob", "--email", "bob@example.test", "--password-stdin"], env, `${chosen}\n`);
    expect(created).toMatchObject({ code: 0, stderr: "" });
    expect(created.stdout).not.toMatch(PASSWORD_LINE);
    expect(lines(created.stdout)).toEqual([expect.stringMatching(/^Created user account bob </)]);
    expect(await signInAndFetchMe(runningNode(), "bob@example.test", chosen)).toMatchObject({ username: "bob", role: "user" });
  });

  test("the REPL's user-create --admin creates an admin and prints its password once", async () => {
    const { out, err } = await replUserCreate(runningNode().broker, {
      username: "ops",
      email: "ops@example.test",
      options: { admin: true },
      rawCommand: "user-create ops ops@example.test --admin",
    });
    expect(err).toEqual([]);
    const password = PASSWORD_LINE.exec(out.join("\n"))?.[1];
    expect(password).toBeDefined();
    expect(await signInAndFetchMe(runningNode(), "ops", password!)).toMatchObject({ role: "admin" });

    const taken = await replUserCreate(runningNode().broker, { username: "ops2", email: "OPS@example.test", options: {} });
    expect(taken.out).toEqual([]);
    expect(taken.err).toEqual([expect.stringMatching(/^user-create: .*\(email: is already registered\)$/)]);
  });
});

describe("cluster", () => {
  let services: TestServices;
  let env: Record<string, string>;

  beforeAll(async () => {
    services = await startServices({ mariadb: { replicas: 1 }, redis: true, nats: true, s3: true });
    env = envFor(services);
  });

  afterAll(async () => {
    await stopAllNodes();
    await services?.stop();
  });

  test("user:create joins the cluster without services and creates the account on the users node", async () => {
    const node = await startNode({ ...env, NODE_ID: "operator-users", SERVICES: "api,users,site" });
    const created = await userCreate(["--admin", "--username", "clusterroot", "--email", "clusterroot@example.test"], env);
    // stderr may hold the AWS SDK's warning about the Node version, printed when the S3 client loads.
    expect(created.code).toBe(0);
    expect(created.stderr).not.toMatch(/user-create:/);
    const password = PASSWORD_LINE.exec(created.stdout)?.[1];
    expect(password).toBeDefined();
    expect(await signInAndFetchMe(node, "clusterroot", password!)).toMatchObject({ role: "admin" });
    await stopNode(node);
  });
});
