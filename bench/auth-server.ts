/**
 * The Shoal server under test for bench/auth.ts, in a process of its own so that the load generator
 * does not share its event loop. A Shoal node configured by the environment, like server.ts
 * (PORT defaults to 0, LOG_LEVEL to warn), plus an event-loop delay monitor that the parent reads
 * over the IPC channel (bench only; the product has no such endpoint).
 *
 * Messages from the parent: {type:"reset"} starts a new measuring window; {type:"report"} answers
 * {type:"report", report: LoopReport} for the window so far. The child sends {type:"ready", port}
 * once listening, and stops on SIGTERM, SIGINT or when the IPC channel closes.
 */
import { monitorEventLoopDelay, performance, PerformanceObserver } from "node:perf_hooks";
import type { EventLoopUtilization } from "node:perf_hooks";
import { parseSettings } from "../config/settings";
import { createNode } from "../node";
import { MONITOR_RESOLUTION_MS } from "./auth-protocol";
import { exitWithError, stopOnce } from "./harness/common";
import type { FromServer, LoopReport, ToServer } from "./auth-protocol";

function send(message: FromServer): void {
  process.send?.(message);
}

/** The monitor records the interval between its timer's runs; the delay is what exceeds the resolution. */
const delayMs = (intervalNs: number): number => Number(Math.max(0, intervalNs / 1e6 - MONITOR_RESOLUTION_MS).toFixed(2));

async function main(): Promise<void> {
  if (process.send === undefined) throw new Error("bench/auth-server.ts is started by bench/auth.ts with an IPC channel");
  const settings = parseSettings({ PORT: "0", LOG_LEVEL: "warn", ...process.env });
  const node = createNode(settings);

  const delay = monitorEventLoopDelay({ resolution: MONITOR_RESOLUTION_MS });
  delay.enable();
  const gc = { count: 0, totalMs: 0, maxMs: 0 };
  const gcObserver = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      gc.count++;
      gc.totalMs += entry.duration;
      gc.maxMs = Math.max(gc.maxMs, entry.duration);
    }
  });
  gcObserver.observe({ entryTypes: ["gc"] });
  let windowStart = { at: performance.now(), elu: performance.eventLoopUtilization(), cpu: process.cpuUsage() };
  const reset = () => {
    delay.reset();
    Object.assign(gc, { count: 0, totalMs: 0, maxMs: 0 });
    windowStart = { at: performance.now(), elu: performance.eventLoopUtilization(), cpu: process.cpuUsage() };
  };
  const report = (): LoopReport => {
    const seconds = (performance.now() - windowStart.at) / 1000;
    const elu: EventLoopUtilization = performance.eventLoopUtilization(windowStart.elu);
    const cpu = process.cpuUsage(windowStart.cpu);
    return {
      delayMs: {
        p50: delayMs(delay.percentile(50)),
        p90: delayMs(delay.percentile(90)),
        p99: delayMs(delay.percentile(99)),
        max: delayMs(delay.max),
        mean: delayMs(delay.mean),
      },
      utilization: Number(elu.utilization.toFixed(3)),
      cpuSecondsPerSecond: Number(((cpu.user + cpu.system) / 1e6 / seconds).toFixed(2)),
      gc: { count: gc.count, totalMs: Number(gc.totalMs.toFixed(1)), maxMs: Number(gc.maxMs.toFixed(1)) },
      windowSeconds: Number(seconds.toFixed(2)),
    };
  };
  process.on("message", (message: ToServer) => {
    if (message.type === "reset") {
      reset();
      send({ type: "reset" });
    } else if (message.type === "report") {
      send({ type: "report", report: report() });
    }
  });

  stopOnce(() => {
    delay.disable();
    gcObserver.disconnect();
    return node.stop();
  }, "disconnect");

  await node.start();
  if (node.port === undefined) throw new Error("the node does not run the api service (check SERVICES)");
  send({ type: "ready", port: node.port });
}

main().catch(exitWithError);
