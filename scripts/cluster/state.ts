/**
 * What `npm run cluster -- up` started, kept in <dir>/cluster.json so that `status`, `logs` and `down`
 * (later commands, other processes) find it; and the readiness checks `status` runs.
 *
 * Each process is recorded with its pid and its start time (Linux: /proc/<pid>/stat), so that a pid the
 * system has since given to another process is never taken for ours.
 */
import fs from "node:fs";
import path from "node:path";
import { canConnect } from "../services/ports";
import type { Readiness } from "./launcher";
import { httpGet } from "./launcher";

export interface RecordedProcess {
  readonly name: string;
  readonly role: string;
  readonly pid: number;
  /** Field 22 of /proc/<pid>/stat; undefined where there is no /proc. */
  readonly startTime: string | undefined;
  readonly readiness: Readiness;
  readonly logFiles: readonly string[];
}

export interface ClusterState {
  /** starting → ready → stopping → stopped, or starting → failed. */
  readonly phase: "starting" | "ready" | "failed" | "stopping" | "stopped";
  readonly url: string;
  readonly port: number;
  /** The process that runs the cluster (and the S3 stand-in inside it). */
  readonly launcher: RecordedProcess;
  readonly processes: readonly RecordedProcess[];
  /** Why it failed (phase `failed`). */
  readonly error?: string;
}

export const stateFile = (dir: string): string => path.join(dir, "cluster.json");
export const launcherLog = (dir: string): string => path.join(dir, "logs", "launcher.log");

export function readState(dir: string): ClusterState | undefined {
  try {
    return JSON.parse(fs.readFileSync(stateFile(dir), "utf8")) as ClusterState;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new Error(`${stateFile(dir)} is unreadable: ${(error as Error).message}`);
  }
}

/** Written whole and renamed into place, so that a reader never sees half a file. */
export function writeState(dir: string, state: ClusterState): void {
  const file = stateFile(dir);
  const partial = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(partial, `${JSON.stringify(state, null, 2)}\n`);
  fs.renameSync(partial, file);
}

export function processStartTime(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    // pid (comm) state ppid ...: comm may hold spaces and parentheses, so count fields after the last ")".
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}

export function recordProcess(process: Omit<RecordedProcess, "startTime">): RecordedProcess {
  return { ...process, startTime: processStartTime(process.pid) };
}

/** Whether the recorded process still runs: its pid is alive and, where /proc tells, started when recorded. */
export function isRunning(recorded: Pick<RecordedProcess, "pid" | "startTime">): boolean {
  try {
    process.kill(recorded.pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  if (recorded.startTime === undefined) return true;
  const now = processStartTime(recorded.pid);
  // A zombie (exited, not yet reaped) has no business being called running either.
  return now === recorded.startTime && !isZombie(recorded.pid);
}

function isZombie(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
  } catch {
    return false;
  }
}

export interface ProcessStatus {
  readonly name: string;
  readonly role: string;
  readonly pid: number;
  /** `ready`, or what stands in the way: starting, stopping, down (a node's own word), not answering, exited. */
  readonly readiness: string;
  readonly ready: boolean;
}

async function readinessOf(recorded: RecordedProcess): Promise<string> {
  if (!isRunning(recorded)) return "exited";
  const { readiness } = recorded;
  if (readiness.kind === "running") return "ready";
  if (readiness.kind === "tcp") {
    return canConnect(readiness.port).then(
      () => "ready",
      () => "not answering",
    );
  }
  try {
    const { status, body } = await httpGet(readiness.url);
    if (status === 200) return "ready";
    const reported = (JSON.parse(body) as { status?: unknown }).status;
    return typeof reported === "string" ? reported : `HTTP ${status}`;
  } catch (error) {
    return error instanceof SyntaxError ? "not ready" : "not answering";
  }
}

/** Each recorded process (the launcher first) with its readiness, checked now. */
export async function clusterStatus(state: ClusterState): Promise<ProcessStatus[]> {
  const all = [state.launcher, ...state.processes];
  const readiness = await Promise.all(all.map(readinessOf));
  return all.map((recorded, index) => {
    const word = readiness[index] ?? "unknown";
    return { name: recorded.name, role: recorded.role, pid: recorded.pid, readiness: word, ready: word === "ready" };
  });
}

export function formatStatus(rows: readonly ProcessStatus[]): string {
  const header = { name: "NAME", role: "ROLE", pid: "PID", readiness: "READINESS" };
  const lines = [header, ...rows.map((row) => ({ ...row, pid: String(row.pid) }))];
  const width = (key: keyof typeof header) => Math.max(...lines.map((line) => line[key].length));
  return lines
    .map((line) => [line.name.padEnd(width("name")), line.role.padEnd(width("role")), line.pid.padStart(width("pid")), line.readiness].join("  "))
    .join("\n");
}
