/**
 * One server under test for bench/read.ts, run in a process of its own so that the load
 * generator does not share its event loop.
 *
 *   BENCH_ROLE=shoal  A Shoal node configured by the environment, like server.ts (PORT defaults to 0,
 *                     LOG_LEVEL to warn). With BENCH_CREATE_USER=<username>, it creates that account
 *                     once started and reports its id. A node without the api service (e.g.
 *                     SERVICES=processing, for bench/process.ts) reports port 0. With
 *                     BENCH_REPORT_JOBS=1 it prints `{"benchJob":{"mediaId":…,"stage":…,"node":…}}` for
 *                     each job this node finishes (stage `ready` or `failed`, as the worker emits it).
 *                     With BENCH_DEFER_SUBSCRIBE=1 (a worker node of bench/process.ts) the node starts
 *                     (connected, reconciler round done) without subscribing to its channels; it then takes
 *                     commands, one JSON line each on stdin, and answers each with a `{"benchAnswer":…}` line:
 *                       {"benchCommand":{"name":"warmup","job":{id,ownerId,kind}}}  runs that job through
 *                         the processing service's channel handler here (claim, fetch the original, process,
 *                         store, complete: the worker's own path), without JetStream;
 *                       {"benchCommand":{"name":"subscribe"}}  subscribes to the channels now;
 *                       {"benchCommand":{"name":"reconcile"}}  runs a reconciler round now (processing.reconcile):
 *                         an embedded node, whose in-process channel drops what is published while nobody is
 *                         subscribed, takes its jobs queued as 'uploaded' rows this way.
 *   BENCH_ROLE=raw    A bare node:http server answering every request with the bytes of BENCH_BODY_BASE64
 *                     and the Content-Type BENCH_CONTENT_TYPE.
 *
 * With NODE_PROCESSES=n (n > 1), either role runs as a group of n processes sharing the port (lib/ops/process-group.ts),
 * and `benchReady` comes once all of them serve.
 *
 * Once listening it prints one JSON line `{"benchReady":{"port":…,"userId":…}}` on stdout. It stops on
 * SIGTERM or SIGINT, or when its stdin closes (the parent went away); a Shoal node first prints
 * `{"benchStats":{…}}` with the read routing of its users database.
 */
import http from "node:http";
import readline from "node:readline";
import { parseSettings } from "../../config/settings";
import { MEDIA_JOBS_CHANNEL } from "../../lib/service-contracts";
import type { JobMessage } from "../../lib/jobs/processor";
import { PROGRESS_EVENT } from "../../lib/service-contracts";
import { createNode } from "../../node";
import { onStopRequest, processIndex, reportProcessReady, settingsForProcess, superviseProcessGroup } from "../../lib/ops/process-group";
import { exitWithError, serveUntilStopped, stopOnce } from "./common";

export interface ReadyLine {
  /** 0 when the node runs no api service. */
  readonly port: number;
  readonly userId?: string;
}

/** A job finished by a worker node (BENCH_REPORT_JOBS=1). */
export interface JobLine {
  readonly mediaId: string;
  readonly stage: "ready" | "failed";
  readonly node: string;
}

/** A command to a worker node started with BENCH_DEFER_SUBSCRIBE=1 (one JSON line on its stdin). */
export type BenchCommand = { readonly name: "warmup"; readonly job: JobMessage } | { readonly name: "subscribe" } | { readonly name: "reconcile" };

/** The answer to a BenchCommand: its name, and `error` when it failed. */
export interface BenchAnswer {
  readonly name: BenchCommand["name"];
  readonly error?: string;
  /** subscribe: how many channels were subscribed to. */
  readonly channels?: number;
  /** reconcile: how many items were published again. */
  readonly requeued?: number;
}

function announce(key: "benchReady" | "benchStats" | "benchJob" | "benchAnswer", value: unknown): void {
  process.stdout.write(`${JSON.stringify({ [key]: value })}\n`);
}

/** In a group, the supervisor announces the group once every process serves. */
function announceReady(ready: ReadyLine): void {
  if (processIndex() === undefined) announce("benchReady", ready);
  else reportProcessReady(ready.port);
}

async function runGroup(processes: number): Promise<void> {
  const log = { info: (message: string) => console.error(message), error: (message: string) => console.error(message) };
  const exitCode = superviseProcessGroup({ processes, stopTimeoutMs: 30_000, log, onReady: (port) => announce("benchReady", { port: port ?? 0 } satisfies ReadyLine) });
  // The parent going away stops the group as SIGTERM does.
  process.stdin.on("end", () => process.kill(process.pid, "SIGTERM"));
  process.stdin.resume();
  process.exit(await exitCode);
}

async function runShoal(): Promise<void> {
  const parsed = parseSettings({ PORT: "0", LOG_LEVEL: "warn", ...process.env });
  const index = processIndex();
  const settings = index === undefined ? parsed : settingsForProcess(parsed, index);
  const node = createNode(settings);
  stopOnce(async () => {
    if (settings.services.includes("users")) {
      const status = await node.broker.call("users.replicationStatus", {}).catch((error: unknown) => ({ error: String(error) }));
      announce("benchStats", status);
    }
    await node.stop();
  }, "stdin");
  if (process.env.BENCH_REPORT_JOBS === "1") {
    // The worker emits the progress event of every stage change; `ready` and `failed` end a job on this node.
    const emit = node.broker.emit.bind(node.broker);
    node.broker.emit = ((name: string, payload?: unknown, opts?: unknown) => {
      const update = payload as { mediaId?: string; stage?: string } | undefined;
      if (name === PROGRESS_EVENT && update?.mediaId !== undefined && (update.stage === "ready" || update.stage === "failed")) {
        announce("benchJob", { mediaId: update.mediaId, stage: update.stage, node: node.broker.nodeID } satisfies JobLine);
      }
      return emit(name, payload, opts as never);
    }) as typeof node.broker.emit;
  }
  if (process.env.BENCH_DEFER_SUBSCRIBE === "1") deferSubscriptions(node.broker);
  await node.start();

  let userId: string | undefined;
  const username = process.env.BENCH_CREATE_USER;
  if (username !== undefined && username !== "") {
    const { user } = await node.broker.call<{ user: { id: string } }, { username: string; email: string }>("users.create", {
      username,
      email: `${username}@example.test`,
    });
    userId = user.id;
  }
  if (node.port === undefined && settings.services.includes("api")) throw new Error("the api service did not report its port");
  announceReady({ port: node.port ?? 0, userId });
}

interface ChannelAdapter {
  subscribe(chan: unknown, service: unknown): Promise<void>;
}

/**
 * Holds back the channels middleware's subscriptions (it subscribes once the broker has started) until the
 * `subscribe` command, and answers the commands on stdin (see the top of this file).
 */
function deferSubscriptions(broker: ReturnType<typeof createNode>["broker"]): void {
  const adapter = (broker as unknown as { channelAdapter?: ChannelAdapter }).channelAdapter;
  if (adapter === undefined) throw new Error("BENCH_DEFER_SUBSCRIBE=1 on a node without the channels middleware");
  const subscribe = adapter.subscribe.bind(adapter);
  const held: Array<[unknown, unknown]> = [];
  adapter.subscribe = async (chan, service) => {
    held.push([chan, service]);
  };
  const run = async (command: BenchCommand): Promise<BenchAnswer> => {
    if (command.name === "subscribe") {
      adapter.subscribe = subscribe;
      const channels = held.splice(0);
      for (const [chan, service] of channels) await subscribe(chan, service);
      return { name: "subscribe", channels: channels.length };
    }
    if (command.name === "reconcile") {
      const { requeued } = await broker.call<{ requeued: number }>("processing.reconcile");
      return { name: "reconcile", requeued };
    }
    const processing = broker.getLocalService("processing") as unknown as { emitLocalChannelHandler(channel: string, payload: unknown): Promise<unknown> } | undefined;
    if (processing === undefined) throw new Error("no processing service on this node");
    await processing.emitLocalChannelHandler(MEDIA_JOBS_CHANNEL, command.job);
    return { name: "warmup" };
  };
  readline.createInterface({ input: process.stdin }).on("line", (line) => {
    if (!line.startsWith('{"benchCommand"')) return;
    const command = (JSON.parse(line) as { benchCommand: BenchCommand }).benchCommand;
    run(command).then(
      (answer) => announce("benchAnswer", answer),
      (error: unknown) => announce("benchAnswer", { name: command.name, error: error instanceof Error ? error.message : String(error) } satisfies BenchAnswer),
    );
  });
}

async function runRaw(): Promise<void> {
  const body = Buffer.from(process.env.BENCH_BODY_BASE64 ?? "", "base64");
  const contentType = process.env.BENCH_CONTENT_TYPE ?? "application/json; charset=utf-8";
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { "Content-Type": contentType, "Content-Length": body.length });
    res.end(body);
  });
  const port = await serveUntilStopped(server, "stdin", Number(process.env.PORT ?? 0));
  announceReady({ port });
}

const role = process.env.BENCH_ROLE;
const run = role === "shoal" ? runShoal : role === "raw" ? runRaw : undefined;
if (run === undefined) {
  console.error(`BENCH_ROLE must be "shoal" or "raw" (got ${JSON.stringify(role)})`);
  process.exit(2);
}
// A process of a group stops when its supervisor asks, as on SIGTERM.
onStopRequest(() => process.kill(process.pid, "SIGTERM"));
const processes = Number(process.env.NODE_PROCESSES ?? "1");
(processes > 1 && processIndex() === undefined ? runGroup(processes) : run()).catch(exitWithError);
