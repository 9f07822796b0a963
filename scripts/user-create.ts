/**
 * Creates an account from the operator's shell; the only way to make the first admin.
 *
 *   npm run user:create -- [--admin] --username NAME --email EMAIL [--password-stdin]
 *
 * Without --password-stdin the users service generates a password, printed once on stdout.
 * Embedded, it runs the users and site services itself on the same data directory (a running
 * Shoal may keep running); in a cluster it joins as a node without services and calls the
 * cluster's users service. Exit codes: 0 created, 1 refused or failed, 2 usage or settings error.
 */
import "dotenv/config";
import os from "node:os";
import readline from "node:readline";
import { parseArgs } from "node:util";
import type { ServiceBroker } from "moleculer";
import { parseSettings, SettingsError } from "../config/settings";
import type { Settings } from "../config/settings";
import { toErrorResponse } from "../lib/http/error-body";
import type { GatewayError } from "../lib/http/error-body";
import type { Role } from "../lib/users/user-repository";
import type { accountView } from "../lib/users/user-views";
import { createNode } from "../node";

const USAGE = "usage: npm run user:create -- [--admin] --username NAME --email EMAIL [--password-stdin]";
const WAIT_FOR_USERS_MS = 30_000;

export interface CreateRequest {
  readonly username: string;
  readonly email: string;
  readonly role: Role;
  /** Omitted: the service generates one. */
  readonly password?: string;
}

export interface CreateResult {
  readonly user: ReturnType<typeof accountView>;
  readonly generatedPassword?: string;
}

/** A mistake in how the command was called (exit code 2). */
class UsageError extends Error {}

export function createAccount(broker: ServiceBroker, request: CreateRequest): Promise<CreateResult> {
  return broker.call<CreateResult, CreateRequest>("users.create", request);
}

/** What to tell the operator about a created account; the generated password appears here and nowhere else. */
export function describeCreated({ user, generatedPassword }: CreateResult): string[] {
  const lines = [`Created ${user.role === "admin" ? "admin" : "user"} account ${user.username} <${user.email}> (id ${user.id}).`];
  if (generatedPassword !== undefined) {
    lines.push(`Password (shown only this once; sign in and change it): ${generatedPassword}`);
  }
  return lines;
}

/** One line: the service's message and the fields at fault; for anything unexpected, the real cause. */
export function describeFailure(error: unknown): string {
  const candidate = (typeof error === "object" && error !== null ? error : {}) as GatewayError;
  const type = typeof candidate.type === "string" ? candidate.type : "";
  let text: string;
  if (type === "SERVICE_NOT_FOUND" || type === "SERVICE_NOT_AVAILABLE") {
    text = "The users service is not available: no node running it could be reached.";
  } else if (type === "VALIDATION_ERROR" || /^[a-z][a-z0-9_]*$/.test(type)) {
    // Errors written for clients (the service's validation, conflicts, policy): as the API shows them.
    const { message, fields } = toErrorResponse(candidate).body.error;
    const details = Object.entries(fields).map(([field, problem]) => `${field}: ${problem}`);
    text = details.length > 0 ? `${message} (${details.join("; ")})` : message;
  } else {
    text = error instanceof Error ? error.message : String(error);
  }
  return text.replace(/\s+/g, " ").trim();
}

/** The REPL's `user-create <username> <email> [--admin]` (see scripts/repl-commands.ts). */
export async function userCreateFromRepl(broker: ServiceBroker, args: { readonly [name: string]: unknown }): Promise<void> {
  const options = (args.options ?? {}) as { readonly admin?: unknown };
  try {
    const result = await createAccount(broker, {
      username: String(args.username ?? ""),
      email: String(args.email ?? ""),
      role: options.admin === true ? "admin" : "user",
    });
    for (const line of describeCreated(result)) console.log(line);
  } catch (error) {
    console.error(`user-create: ${describeFailure(error)}`);
  }
}

interface CommandLine {
  readonly username: string;
  readonly email: string;
  readonly role: Role;
  readonly passwordFromStdin: boolean;
  readonly help: boolean;
}

function parseCommandLine(argv: readonly string[]): CommandLine {
  let values: { admin?: boolean; username?: string; email?: string; "password-stdin"?: boolean; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        admin: { type: "boolean" },
        username: { type: "string" },
        email: { type: "string" },
        "password-stdin": { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (error) {
    const { code, message } = error as { code?: string; message: string };
    const option = /'([^']+)'/.exec(message)?.[1];
    if (code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") throw new UsageError(`unknown option ${option ?? ""}`.trim());
    if (code === "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL") throw new UsageError(`unexpected argument ${option ?? ""}`.trim());
    // ERR_PARSE_ARGS_INVALID_OPTION_VALUE: a value missing (--username with nothing after it) or given to a flag.
    throw new UsageError(message.split("\n")[0] ?? message);
  }
  const help = values.help === true;
  if (!help) {
    const missing = (["username", "email"] as const).filter((name) => values[name] === undefined).map((name) => `--${name}`);
    if (missing.length > 0) throw new UsageError(`missing ${missing.join(" and ")}`);
  }
  return {
    username: values.username ?? "",
    email: values.email ?? "",
    role: values.admin === true ? "admin" : "user",
    passwordFromStdin: values["password-stdin"] === true,
    help,
  };
}

/** The first line of stdin, without its line ending (a prompt on stderr when a person types it). */
async function readPasswordLine(): Promise<string> {
  if (process.stdin.isTTY) process.stderr.write("Password: ");
  const lines = readline.createInterface({ input: process.stdin, terminal: false });
  try {
    for await (const line of lines) return line;
  } finally {
    lines.close();
    process.stdin.destroy();
  }
  throw new UsageError("--password-stdin: stdin ended before a password line");
}

/** Embedded: users and site on the shared data directory. Cluster: a node of its own, without services. */
function nodeSettings(settings: Settings): Settings {
  // The broker's info lines would mix with the password on stdout; LOG_LEVEL still wins when set.
  const logLevel = process.env.LOG_LEVEL?.trim() ? settings.logLevel : "warn";
  return settings.mode === "cluster"
    ? { ...settings, logLevel, services: [], nodeId: settings.nodeId ?? `user-create-${os.hostname()}-${process.pid}` }
    : { ...settings, logLevel, services: ["users", "site"] };
}

async function main(): Promise<number> {
  const commandLine = parseCommandLine(process.argv.slice(2));
  if (commandLine.help) {
    console.log(USAGE);
    return 0;
  }
  const settings = parseSettings(process.env);
  const password = commandLine.passwordFromStdin ? await readPasswordLine() : undefined;

  const node = createNode(nodeSettings(settings));
  try {
    await node.start();
    if (settings.mode === "cluster") {
      await node.broker.waitForServices(["users"], WAIT_FOR_USERS_MS).catch(() => {
        throw new Error(`no node running the users service joined within ${WAIT_FOR_USERS_MS / 1000} s`);
      });
    }
    const result = await createAccount(node.broker, {
      username: commandLine.username,
      email: commandLine.email,
      role: commandLine.role,
      ...(password === undefined ? {} : { password }),
    });
    for (const line of describeCreated(result)) console.log(line);
    return 0;
  } finally {
    await node.stop().catch((error: unknown) => console.error(`user-create: stopping: ${describeFailure(error)}`));
  }
}

if (require.main === module) {
  main().then(
    (code) => process.exit(code),
    (error: unknown) => {
      const usage = error instanceof UsageError;
      const line = error instanceof SettingsError ? error.message : describeFailure(error);
      console.error(`user-create: ${line}${usage ? ` (${USAGE})` : ""}`);
      process.exit(usage || error instanceof SettingsError ? 2 : 1);
    },
  );
}
