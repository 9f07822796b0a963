import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseSettings } from "../../config/settings";
import type { Env, Settings } from "../../config/settings";
import { createNode } from "../../node";
import type { NodeOptions, ShoalNode } from "../../node";

export interface RunningNode extends ShoalNode {
  readonly settings: Settings;
  /** http://127.0.0.1:<port> when the node runs the api service. */
  readonly baseUrl: string;
}

const running = new Set<RunningNode>();

/** Starts a real node in this process with the given environment (embedded unless SHOAL_MODE says otherwise). */
export async function startNode(env: Env, options: { waitForStart?: boolean } & NodeOptions = {}): Promise<RunningNode> {
  const dataDir = env.SHOAL_DATA_DIR ?? fs.mkdtempSync(path.join(os.tmpdir(), "shoal-node-"));
  const settings = parseSettings({ PORT: "0", LOG_LEVEL: "error", ...env, SHOAL_DATA_DIR: dataDir });
  const node = createNode(settings, { processors: options.processors });
  const starting = node.start();
  const handle: RunningNode = {
    settings,
    broker: node.broker,
    runtime: node.runtime,
    get port() {
      return node.port;
    },
    get metricsPort() {
      return node.metricsPort;
    },
    get publicUrl() {
      return node.publicUrl;
    },
    get baseUrl() {
      return `http://127.0.0.1:${node.port ?? 0}`;
    },
    start: () => node.start(),
    stop: () => node.stop(),
  };
  running.add(handle);
  if (options.waitForStart ?? true) await starting;
  else starting.catch(() => undefined);
  return handle;
}

export async function stopNode(node: RunningNode): Promise<void> {
  running.delete(node);
  await node.stop();
}

export async function stopAllNodes(): Promise<void> {
  await Promise.all([...running].map((node) => stopNode(node)));
}

/** Polls until the check passes or the time is up; returns the last value. */
export async function eventually<T>(probe: () => Promise<T>, accept: (value: T) => boolean, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let value = await probe();
  while (!accept(value)) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms; last value: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
    value = await probe();
  }
  return value;
}
