/**
 * The private cluster services of bench/process.ts (scripts/services: a MariaDB primary, Redis, NATS with
 * JetStream, S3), started in a process of their own. MariaDB, Redis and NATS are server binaries anyway;
 * the S3 server (s3rver) is JavaScript that runs inside the process that starts it, and here it gets its
 * own event loop instead of sharing the benchmark client's, which times the jobs.
 *
 * No MariaDB replica: no node of the benchmark needs one (MYSQL_REPLICA_URLS may be empty; reads then go
 * to the primary), and a replica would only add its apply thread to the two cores being measured.
 *
 * Sends {type:"services", env, s3Dir} (bench/process-protocol.ts) once everything runs; stops everything
 * and exits on SIGTERM, SIGINT or when the IPC channel closes. If this process is killed outright, the
 * watchdog of scripts/services/processes.ts stops the servers and deletes their directories.
 */
import { envFor, startServices } from "../scripts/services";
import type { ClusterServicesReady } from "./process-protocol";

async function main(): Promise<void> {
  if (process.send === undefined) throw new Error("bench/process-services.ts is started by bench/process.ts with an IPC channel");
  const services = await startServices({ mariadb: { replicas: 0 }, redis: true, nats: true, s3: true });
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
  const ready: ClusterServicesReady = { type: "services", env: envFor(services), s3Dir: services.s3.dir };
  process.send(ready);
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? (error.stack ?? error.message) : error);
  process.exit(1);
});
