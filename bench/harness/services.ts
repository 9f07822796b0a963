/**
 * The private cluster services of bench/upload.ts and bench/process.ts (scripts/services: a MariaDB primary
 * with BENCH_MARIADB_REPLICAS replicas (0 or 1), Redis, NATS with JetStream, S3), started in a process of
 * their own (bench/harness/children.ts startServicesChild()). MariaDB, Redis and NATS are server binaries anyway, but
 * the S3 server (s3rver) is JavaScript that runs inside the process that starts it: here it gets its own event
 * loop instead of sharing the benchmark client's, which times the uploads or jobs and would otherwise be slowed
 * down by exactly their S3 work.
 *
 * bench/upload.ts asks for one replica (its cluster mode is the one of the read path); bench/process.ts for none
 * (no node of it needs one: MYSQL_REPLICA_URLS may be empty and reads then go to the primary, and a replica
 * would only add its apply thread to the cores being measured).
 *
 * The s3rver that scripts/services/s3.ts starts also answers ListParts and AbortMultipartUpload, which
 * @tus/s3-store needs and s3rver lacks (see there).
 *
 * With BENCH_WATCH_WINDOW=1 (bench/upload.ts), it answers {type:"reset"} and {type:"report"} with its own
 * memory, GC and main-thread load like the servers under test (bench/upload-window.ts): for upload round (d),
 * which uploads to s3rver directly, this process is the server watched.
 *
 * Sends {type:"services", env, s3Dir} once everything runs; stops everything and exits on SIGTERM, SIGINT or
 * when the IPC channel closes. If this process is killed outright, the watchdog of scripts/services/processes.ts
 * stops the servers and deletes their directories.
 */
import { envFor, startServices } from "../../scripts/services";
import { exitWithError, stopOnce } from "./common";
import { watchWindow } from "../upload-window";

/** What this process sends to its parent over IPC once the private services run. */
export interface ServicesReady {
  readonly type: "services";
  /** envFor(services): SHOAL_MODE=cluster, SHOAL_SECRET and the URLs of MariaDB, Redis, NATS and S3. */
  readonly env: Record<string, string>;
  /** s3rver's storage directory (it runs inside this process). */
  readonly s3Dir: string;
}

async function main(): Promise<void> {
  const send = process.send?.bind(process);
  if (send === undefined) throw new Error("bench/harness/services.ts is started by a benchmark with an IPC channel (bench/harness/children.ts)");
  const replicas = process.env.BENCH_MARIADB_REPLICAS ?? "0";
  if (replicas !== "0" && replicas !== "1") throw new Error(`BENCH_MARIADB_REPLICAS must be 0 or 1 (got ${JSON.stringify(replicas)})`);
  if (process.env.BENCH_WATCH_WINDOW === "1") watchWindow();
  const services = await startServices({ mariadb: { replicas: Number(replicas) }, redis: true, nats: true, s3: true });
  stopOnce(() => services.stop(), "disconnect");
  if (services.s3 === undefined) throw new Error("no S3 server was started");
  const ready: ServicesReady = { type: "services", env: envFor(services), s3Dir: services.s3.dir };
  send(ready);
}

main().catch(exitWithError);
