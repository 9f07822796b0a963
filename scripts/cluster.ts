/**
 * npm run cluster -- up|down|status|logs [--dir DIR] [--port N]
 *
 *   up       builds (tsc and the web page), starts the cluster (scripts/cluster/launcher.ts) in a
 *            detached process that keeps it running, waits until every process is ready, prints the URL
 *            --source: run the nodes' TypeScript through tsx instead of building; --no-build: use dist/ as it is
 *   down     stops what `up` started, by the pids it recorded in DIR/cluster.json
 *   status   each process, its role, its pid and its readiness; exit code 0 only when all are ready
 *            --json: the same as JSON
 *   logs     the last lines of every log (or of the processes named); -f follows them, -n N lines
 *
 * DIR defaults to ./cluster-data, the port of HAProxy to 8080.
 */
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { requireBinaries } from "./services/binaries";
import { COMPOSE_HAPROXY_OPTIONS, renderHaproxyConfig } from "./cluster/haproxy-config";
import { CLUSTER_BINARIES, requireFreePort, startCluster } from "./cluster/launcher";
import type { Cluster } from "./cluster/launcher";
import {
  clusterStatus,
  formatStatus,
  isRunning,
  launcherLog,
  readState,
  recordProcess,
  stateFile,
  writeState,
} from "./cluster/state";
import type { ClusterState, RecordedProcess } from "./cluster/state";

const ROOT = path.resolve(__dirname, "..");
const USAGE = "usage: npm run cluster -- up|down|status|logs [--dir DIR] [--port N] (up: --source, --no-build; status: --json; logs: -f, -n N, names)";

/** A failure the operator can act on: printed as its one line, without a stack. */
class CommandError extends Error {}

const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

interface Options {
  readonly dir: string;
  readonly port: number;
  readonly source: boolean;
  readonly build: boolean;
  readonly json: boolean;
  readonly follow: boolean;
  readonly lines: number;
  readonly compose: boolean;
}

function parseCommandLine(argv: readonly string[]): { command: string; names: string[]; options: Options } {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      dir: { type: "string", default: "./cluster-data" },
      port: { type: "string", default: "8080" },
      source: { type: "boolean", default: false },
      "no-build": { type: "boolean", default: false },
      json: { type: "boolean", default: false },
      follow: { type: "boolean", short: "f", default: false },
      lines: { type: "string", short: "n", default: "20" },
      compose: { type: "boolean", default: false },
    },
  });
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new CommandError(`--port: "${values.port}" is not a port number`);
  const lines = Number(values.lines);
  if (!Number.isInteger(lines) || lines < 0) throw new CommandError(`-n: "${values.lines}" is not a number of lines`);
  const [command = "", ...names] = positionals;
  return {
    command,
    names,
    options: {
      dir: path.resolve(values.dir),
      port,
      source: values.source,
      build: !values["no-build"] && !values.source,
      json: values.json,
      follow: values.follow,
      lines,
      compose: values.compose,
    },
  };
}

/** The command that runs this file again in another process, from TypeScript (tsx) or from dist/. */
function thisScript(): string[] {
  return __filename.endsWith(".ts") ? ["--import", pathToFileURL(require.resolve("tsx")).href, __filename] : [__filename];
}

function runningState(dir: string): ClusterState | undefined {
  const state = readState(dir);
  return state !== undefined && isRunning(state.launcher) ? state : undefined;
}

async function up(options: Options): Promise<void> {
  const running = runningState(options.dir);
  if (running !== undefined) {
    throw new CommandError(`a cluster already runs from ${options.dir} (${running.url}, pid ${running.launcher.pid}): npm run cluster -- down first`);
  }
  // Both again in the launcher; here they stop the command before a build is spent on it.
  requireBinaries(CLUSTER_BINARIES);
  await requireFreePort(options.port);
  if (options.build) {
    for (const script of ["build", "build:web"]) {
      console.log(`npm run ${script}`);
      const built = spawnSync("npm", ["run", script, "--silent"], { cwd: ROOT, stdio: "inherit" });
      if (built.status !== 0) throw new CommandError(`npm run ${script} failed`);
    }
  }
  await fs.promises.mkdir(path.dirname(launcherLog(options.dir)), { recursive: true });
  await fs.promises.rm(stateFile(options.dir), { force: true });
  const logFd = fs.openSync(launcherLog(options.dir), "a");
  const args = [...thisScript(), "launch", "--dir", options.dir, "--port", String(options.port)];
  if (options.source) args.push("--source");
  const launcher = spawn(process.execPath, args, { cwd: ROOT, detached: true, stdio: ["ignore", logFd, logFd] });
  fs.closeSync(logFd);
  const exited = new Promise<number | null>((resolve) => launcher.once("exit", (code) => resolve(code)));
  launcher.unref();

  let launcherExit: number | null | undefined;
  void exited.then((code) => {
    launcherExit = code;
  });
  for (;;) {
    const state = readState(options.dir);
    if (state?.phase === "ready") break;
    if (state?.phase === "failed") throw new CommandError(`the cluster did not start: ${state.error ?? "see the logs"} (logs: ${launcherLog(options.dir)})`);
    if (launcherExit !== undefined) {
      throw new CommandError(`the cluster did not start (exit code ${launcherExit}); see ${launcherLog(options.dir)}`);
    }
    await delay(250);
  }
  const state = readState(options.dir) as ClusterState;
  console.log(formatStatus(await clusterStatus(state)));
  console.log(`\nShoal runs on ${state.url}   (npm run cluster -- status | logs | down${options.dir === path.resolve("cluster-data") ? "" : ` --dir ${options.dir}`})`);
}

/** Runs the cluster in this process until SIGTERM or SIGINT; what `up` starts, detached. */
async function launch(options: Options): Promise<void> {
  const launcher = recordProcess({ name: "launcher", role: "launcher", pid: process.pid, readiness: { kind: "running" }, logFiles: [launcherLog(options.dir)] });
  const base = { url: `http://127.0.0.1:${options.port}`, port: options.port, launcher, processes: [] };
  writeState(options.dir, { ...base, phase: "starting" });

  let cluster: Cluster | undefined;
  let stopRequested = false;
  let recorded: RecordedProcess[] = [];
  const record = (phase: ClusterState["phase"]): void => {
    // Once stopped, the list of what ran stays, for `logs` and for a `down` that double-checks.
    if (phase !== "stopped") {
      recorded = (cluster?.processes() ?? []).flatMap((each) =>
        each.pid === undefined
          ? []
          : [recordProcess({ name: each.name, role: each.role, pid: each.pid, readiness: each.readiness, logFiles: each.logFiles })],
      );
    }
    writeState(options.dir, { ...base, phase, processes: recorded });
  };
  const stop = (signal: string): void => {
    if (stopRequested) return;
    stopRequested = true;
    console.log(`${signal}: stopping the cluster`);
    if (cluster === undefined) return; // still starting: stopped once startCluster returns
    record("stopping");
    cluster.stop().then(
      () => {
        record("stopped");
        process.exit(0);
      },
      (error: unknown) => {
        console.error(error);
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
  // The servers' handles are unref'd (scripts/services/processes.ts): this keeps the process, and so them, alive.
  setInterval(() => undefined, 2 ** 30);

  try {
    cluster = await startCluster({
      dir: options.dir,
      port: options.port,
      code: options.source ? "source" : "built",
      log: (line) => console.log(line),
    });
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    console.error(message);
    writeState(options.dir, { ...base, phase: "failed", error: message.split("\n")[0] });
    process.exit(1);
  }
  if (stopRequested) {
    stopRequested = false;
    stop("stop requested while starting");
    return;
  }
  record("ready");
}

async function down(options: Options): Promise<void> {
  const state = readState(options.dir);
  if (state === undefined) throw new CommandError(`no cluster was started from ${options.dir}`);
  const all = [state.launcher, ...state.processes];
  const alive = () => all.filter(isRunning);
  if (alive().length === 0) {
    console.log(`nothing runs from ${options.dir}`);
    return;
  }
  // The launcher stops the others in order (HAProxy, nodes, datastores); only a straggler is signalled here.
  if (isRunning(state.launcher)) process.kill(state.launcher.pid, "SIGTERM");
  else for (const each of alive()) process.kill(each.pid, "SIGTERM");
  const deadline = Date.now() + 90_000;
  while (alive().length > 0 && Date.now() < deadline) await delay(200);
  const stragglers = alive();
  for (const each of stragglers) {
    console.log(`${each.name} (pid ${each.pid}) did not stop: SIGKILL`);
    process.kill(each.pid, "SIGKILL");
  }
  console.log(`stopped ${new Set(all.map((each) => each.pid)).size} processes started from ${options.dir}`);
}

async function status(options: Options): Promise<number> {
  const state = readState(options.dir);
  if (state === undefined) throw new CommandError(`no cluster was started from ${options.dir}`);
  const rows = await clusterStatus(state);
  if (options.json) console.log(JSON.stringify({ url: state.url, phase: state.phase, processes: rows }, null, 2));
  else console.log(`${formatStatus(rows)}\n\n${state.url} (${state.phase})`);
  return rows.every((row) => row.ready) ? 0 : 1;
}

function lastLines(file: string, count: number): string[] {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch {
    return [];
  }
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  return count === 0 ? [] : lines.slice(-count);
}

async function logs(options: Options, names: readonly string[]): Promise<void> {
  const state = readState(options.dir);
  if (state === undefined) throw new CommandError(`no cluster was started from ${options.dir}`);
  const all = [state.launcher, ...state.processes];
  const unknown = names.filter((name) => !all.some((each) => each.name === name));
  if (unknown.length > 0) throw new CommandError(`no process named ${unknown.join(", ")} (known: ${all.map((each) => each.name).join(", ")})`);
  const chosen = names.length === 0 ? all : all.filter((each) => names.includes(each.name));
  const files = chosen.flatMap((each) => each.logFiles.map((file) => ({ name: each.name, file })));
  for (const { name, file } of files) {
    console.log(`==> ${name}: ${file} <==`);
    for (const line of lastLines(file, options.lines)) console.log(line);
  }
  if (!options.follow) return;
  const offsets = new Map(files.map(({ file }) => [file, fs.existsSync(file) ? fs.statSync(file).size : 0]));
  for (;;) {
    await delay(500);
    for (const { name, file } of files) {
      const size = fs.existsSync(file) ? fs.statSync(file).size : 0;
      const from = offsets.get(file) ?? 0;
      if (size === from) continue;
      const start = size < from ? 0 : from; // truncated or replaced: read it from the start
      const fd = fs.openSync(file, "r");
      const buffer = Buffer.alloc(size - start);
      fs.readSync(fd, buffer, 0, buffer.length, start);
      fs.closeSync(fd);
      offsets.set(file, size);
      for (const line of buffer.toString("utf8").split("\n")) if (line !== "") console.log(`${name} | ${line}`);
    }
  }
}

async function main(): Promise<number> {
  const { command, names, options } = parseCommandLine(process.argv.slice(2));
  switch (command) {
    case "up":
      await up(options);
      return 0;
    case "launch":
      await launch(options);
      return -1; // keeps running until signalled
    case "down":
      await down(options);
      return 0;
    case "status":
      return status(options);
    case "logs":
      await logs(options, names);
      return 0;
    case "haproxy-config":
      // The docker-compose rendering of the HAProxy template (deploy/haproxy/haproxy.compose.cfg).
      if (!options.compose) throw new CommandError("haproxy-config: only --compose is rendered this way");
      process.stdout.write(renderHaproxyConfig(COMPOSE_HAPROXY_OPTIONS));
      return 0;
    default:
      throw new CommandError(USAGE);
  }
}

main().then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (error: unknown) => {
    const parseError = (error as { code?: unknown }).code?.toString().startsWith("ERR_PARSE_ARGS") === true;
    const oneLine = error instanceof CommandError || parseError || (error instanceof Error && error.stack === error.message);
    if (!(error instanceof Error)) console.error(String(error));
    else console.error(oneLine ? `${error.message}${parseError ? `\n${USAGE}` : ""}` : error.stack);
    process.exit(1);
  },
);
