/**
 * The S3 stand-in of s3.ts in a child process of its own, as a real object store runs apart from its
 * clients: a benchmark that also runs hundreds of clients then does not serve S3 from the same event loop.
 *
 *   const s3 = await startS3InOwnProcess({ bucket: "shoal", baseDir });
 *   s3.pid;          // the child's
 *   await s3.stop(); // ends the child, which deletes its directory
 *
 * The child ends too when this process goes (its IPC channel closes).
 */
import { fork } from "node:child_process";
import { pathToFileURL } from "node:url";
import { startS3 } from "./s3";
import type { S3Options, S3Server } from "./s3";

type ChildMessage = { readonly started: Omit<S3Server, "stop" | "pid"> } | { readonly failed: string };

const STOP_TIMEOUT_MS = 10_000;
/** The child's first argument; the second is the options as JSON. */
const CHILD_FLAG = "--shoal-s3-child";

export function startS3InOwnProcess(options: S3Options = {}): Promise<S3Server> {
  // From TypeScript (tsx) or from dist/, as this file itself runs.
  const execArgv = __filename.endsWith(".ts") ? ["--import", pathToFileURL(require.resolve("tsx")).href] : [];
  const child = fork(__filename, [CHILD_FLAG, JSON.stringify(options)], { execArgv, stdio: ["ignore", "inherit", "inherit", "ipc"] });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  return new Promise((resolve, reject) => {
    child.once("exit", (code, signal) => reject(new Error(`the S3 stand-in's process ended before it served (${signal ?? `exit code ${code ?? "?"}`})`)));
    child.once("message", (message: ChildMessage) => {
      if ("failed" in message) {
        reject(new Error(`the S3 stand-in did not start: ${message.failed}`));
        return;
      }
      let stopped: Promise<void> | undefined;
      resolve({
        ...message.started,
        pid: child.pid,
        stop: () => {
          stopped ??= (async () => {
            if (child.exitCode === null && child.signalCode === null) {
              // Closing the channel asks the child to stop and delete its directory.
              child.disconnect();
              const timer = setTimeout(() => child.kill("SIGKILL"), STOP_TIMEOUT_MS);
              await exited;
              clearTimeout(timer);
            }
          })();
          return stopped;
        },
      });
    });
  });
}

async function serveInThisChild(): Promise<void> {
  const options = JSON.parse(process.argv[3] ?? "{}") as S3Options;
  let server: S3Server;
  try {
    server = await startS3(options);
  } catch (error) {
    process.send?.({ failed: error instanceof Error ? error.message : String(error) } satisfies ChildMessage, () => process.exit(1));
    return;
  }
  const { stop, ...started } = server;
  process.once("disconnect", () => {
    stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  });
  process.send?.({ started } satisfies ChildMessage);
}

if (process.argv[2] === CHILD_FLAG && process.send !== undefined) void serveInThisChild();
