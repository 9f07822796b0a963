/**
 * HTTP load with wrk (Debian package `wrk`), run as a child process so that the load tool is the same for
 * every server compared, whatever it is written in. `--latency` gives the percentiles.
 */
import { execFile } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { round } from "./common";

export interface WrkOptions {
  readonly threads: number;
  readonly connections: number;
  readonly seconds: number;
  /** wrk's own request timeout (default 2 s: a slower answer counts as a timeout, not a latency). */
  readonly timeoutSeconds?: number;
}

export interface WrkFigures {
  readonly requestsPerSecond: number;
  readonly latencyMs: { readonly p50: number; readonly p75: number; readonly p90: number; readonly p99: number; readonly mean: number; readonly max: number };
  readonly requests: number;
  readonly durationSeconds: number;
  /** Answers other than 2xx and 3xx (wrk counts them as requests too; requestsPerSecond excludes them). */
  readonly non2xx: number;
  readonly socketErrors: { readonly connect: number; readonly read: number; readonly write: number; readonly timeout: number };
  readonly transferMBPerSecond: number;
}

let running: ChildProcess | undefined;

/** Stops a wrk run in progress (on interrupt). */
export function stopWrk(): void {
  running?.kill("SIGINT");
}

const UNIT_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000 };

function toMs(text: string | undefined): number {
  const match = /^([\d.]+)(us|ms|s|m)$/.exec(text ?? "");
  if (match === null) throw new Error(`wrk: cannot read the latency ${JSON.stringify(text)}`);
  return round(Number(match[1]) * (UNIT_MS[match[2] ?? "ms"] ?? 1), 3);
}

const SIZE_MB: Record<string, number> = { B: 1e-6, KB: 1.024e-3, MB: 1.048576, GB: 1073.741824 };

/** Reads wrk's text output (with --latency). */
export function parseWrk(output: string): WrkFigures {
  const find = (pattern: RegExp): RegExpExecArray => {
    const match = pattern.exec(output);
    if (match === null) throw new Error(`wrk: no ${pattern.source} in its output:\n${output}`);
    return match;
  };
  const latency = find(/^\s+Latency\s+(\S+)\s+(\S+)\s+(\S+)/m);
  const percentile = (p: number) => toMs(find(new RegExp(`^\\s+${p}%\\s+(\\S+)`, "m"))[1]);
  const total = find(/^\s+(\d+) requests in ([\d.]+)(\w+),/m);
  const durationSeconds = toMs(`${total[2]}${total[3]}`) / 1000;
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(output)?.[1] ?? 0);
  const errors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(output);
  const transfer = /Transfer\/sec:\s+([\d.]+)(\w+)/.exec(output);
  const requests = Number(total[1]) - non2xx;
  return {
    requestsPerSecond: round(requests / durationSeconds, 1),
    latencyMs: { p50: percentile(50), p75: percentile(75), p90: percentile(90), p99: percentile(99), mean: toMs(latency[1]), max: toMs(latency[3]) },
    requests,
    durationSeconds: round(durationSeconds, 2),
    non2xx,
    socketErrors: {
      connect: Number(errors?.[1] ?? 0),
      read: Number(errors?.[2] ?? 0),
      write: Number(errors?.[3] ?? 0),
      timeout: Number(errors?.[4] ?? 0),
    },
    transferMBPerSecond: transfer === null ? 0 : round(Number(transfer[1]) * (SIZE_MB[transfer[2] ?? "MB"] ?? 1), 2),
  };
}

/** Runs `wrk -t<threads> -c<connections> -d<seconds>s --latency <url>` and reads its figures. */
export function runWrk(url: string, options: WrkOptions): Promise<WrkFigures> {
  const args = [`-t${options.threads}`, `-c${options.connections}`, `-d${options.seconds}s`, `--timeout`, `${options.timeoutSeconds ?? 2}s`, "--latency", url];
  return new Promise<WrkFigures>((resolve, reject) => {
    running = execFile("wrk", args, { encoding: "utf8", timeout: (options.seconds + 30) * 1000 }, (error, stdout, stderr) => {
      running = undefined;
      if (error) return reject(new Error(`wrk ${args.join(" ")}: ${error.message}\n${stderr}`));
      try {
        resolve(parseWrk(stdout));
      } catch (parseError) {
        reject(parseError instanceof Error ? parseError : new Error(String(parseError)));
      }
    });
  });
}

/** `3120 req/s, p50 10.4 ms, p99 19.0 ms`, with `(!)` and the counts when any answer failed. */
export function describeWrk(figures: WrkFigures): string {
  const errors = Object.values(figures.socketErrors).reduce((sum, count) => sum + count, 0);
  const problems = [figures.non2xx > 0 ? `${figures.non2xx} non-2xx` : "", errors > 0 ? `socket errors ${JSON.stringify(figures.socketErrors)}` : ""].filter((text) => text !== "");
  return `${figures.requestsPerSecond.toFixed(0)} req/s, p50 ${figures.latencyMs.p50} ms, p99 ${figures.latencyMs.p99} ms${problems.length > 0 ? `  (!) ${problems.join(", ")}` : ""}`;
}
