/**
 * The private cluster services of bench/upload.ts (scripts/services: MariaDB primary + 1 replica, Redis,
 * NATS, S3), started in a process of their own. MariaDB, Redis and NATS are server binaries anyway, but the
 * S3 server (s3rver) is JavaScript that runs inside the process that starts it: here it gets its own event
 * loop instead of sharing the client's, which would slow the client down by exactly the uploads' S3 work.
 *
 * The s3rver that scripts/services/s3.ts starts also answers ListParts and AbortMultipartUpload, which
 * @tus/s3-store needs and s3rver lacks (see there).
 *
 * Like the servers under test, it answers {type:"reset"} and {type:"report"} with its own memory, GC and
 * main-thread load (bench/upload-window.ts): for round (d), which uploads to s3rver directly, this process is
 * the server watched.
 *
 * Sends {type:"services", env, s3Dir} (bench/upload-protocol.ts) once everything runs; stops everything
 * and exits on SIGTERM, SIGINT or when the IPC channel closes. If this process is killed outright, the
 * watchdog of scripts/services/processes.ts stops the servers and deletes their directories.
 */
import { envFor, startServices } from "../scripts/services";
import type { ServicesReady } from "./upload-protocol";
import { watchWindow } from "./upload-window";

async function main(): Promise<void> {
  if (process.send === undefined) throw new Error("bench/upload-services.ts is started by bench/upload.ts with an IPC channel");
  watchWindow();
  const services = await startServices({ mariadb: { replicas: 1 }, redis: true, nats: true, s3: true });
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    services.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error("stopping the services failed:", error);
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  process.on("disconnect", stop);
  if (services.s3 === undefined) throw new Error("no S3 server was started");
  const ready: ServicesReady = { type: "services", env: envFor(services), s3Dir: services.s3.dir };
  process.send(ready);
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? (error.stack ?? error.message) : error);
  process.exit(1);
});
