/**
 * What JetStream's durability costs here: `npm run bench:nats-sync` (see bench/README.md).
 *
 * On a private nats-server (the installed one), publishes BENCH_MESSAGES messages of 1 KiB, each awaited for its
 * acknowledgement, to (a) a file-backed stream, as the job streams are, and (b) a memory stream, and reads the
 * acknowledgement latency and the rate of each. Then measures (c) what one write followed by fdatasync costs in the
 * directory JetStream stores in: the least that fsyncing every message (`sync_interval: always`, which releases
 * after 2.9 offer) would add to each acknowledgement. Records whether the installed server accepts `sync_interval`.
 *
 * Environment: BENCH_MESSAGES (default 2000), BENCH_OUTPUT (default bench/results/nats-sync.json).
 */
import { execFileSync, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { connect, StorageType } from "nats";
import type { JetStreamClient } from "nats";
import { binaryPath } from "../scripts/services/binaries";
import { startNats } from "../scripts/services";
import { numberFromEnv, outputFromEnv, printWrittenTo, progress, round, runMain, startRun, writeReport } from "./harness/common";

const PAYLOAD = new Uint8Array(1024).fill(0x61);

function percentile(sorted: readonly number[], share: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(share * sorted.length))] ?? 0;
}

function summary(latenciesMs: number[], elapsedMs: number) {
  const sorted = [...latenciesMs].sort((a, b) => a - b);
  return {
    messages: sorted.length,
    perSecond: round((sorted.length / elapsedMs) * 1000, 0),
    p50Ms: round(percentile(sorted, 0.5), 3),
    p99Ms: round(percentile(sorted, 0.99), 3),
  };
}

async function publishAll(js: JetStreamClient, subject: string, count: number) {
  const latencies: number[] = [];
  const started = performance.now();
  for (let i = 0; i < count; i += 1) {
    const sent = performance.now();
    await js.publish(subject, PAYLOAD);
    latencies.push(performance.now() - sent);
  }
  return summary(latencies, performance.now() - started);
}

function fdatasyncCost(dir: string, count: number) {
  const file = path.join(dir, "fsync-probe");
  const fd = fs.openSync(file, "w");
  const latencies: number[] = [];
  const started = performance.now();
  try {
    for (let i = 0; i < count; i += 1) {
      const before = performance.now();
      fs.writeSync(fd, PAYLOAD);
      fs.fdatasyncSync(fd);
      latencies.push(performance.now() - before);
    }
  } finally {
    fs.closeSync(fd);
    fs.rmSync(file, { force: true });
  }
  return summary(latencies, performance.now() - started);
}

/** Whether this nats-server accepts `sync_interval` in its jetstream block (it reads the file and stops at an unknown field). */
function acceptsSyncInterval(): { accepted: boolean; answer: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "shoal-nats-sync-"));
  try {
    const config = path.join(dir, "probe.conf");
    fs.writeFileSync(config, `jetstream { store_dir: "${path.join(dir, "js")}", sync_interval: "always" }\nport: -1\n`);
    const run = spawnSync(binaryPath("nats-server"), ["-c", config], { encoding: "utf8", timeout: 3000 });
    const answer = `${run.stdout}${run.stderr}`.trim().split("\n")[0] ?? "";
    return { accepted: !/unknown field/.test(answer), answer };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const messages = numberFromEnv("BENCH_MESSAGES", 2000, { integer: true });
  const output = outputFromEnv("nats-sync");
  const run = startRun(`${messages} messages of 1 KiB per stream, each publish awaited`, { showLoad: true });
  const version = execFileSync(binaryPath("nats-server"), ["--version"], { encoding: "utf8" }).trim();
  const syncInterval = acceptsSyncInterval();
  progress("nats", `${version}; sync_interval ${syncInterval.accepted ? "accepted" : `refused (${syncInterval.answer})`}`);

  const nats = await startNats();
  const connection = await connect({ servers: nats.url });
  try {
    const manager = await connection.jetstreamManager();
    const js = connection.jetstream();
    const results: Record<string, ReturnType<typeof summary>> = {};
    for (const storage of ["file", "memory"] as const) {
      const subject = `bench.${storage}`;
      await manager.streams.add({ name: `bench_${storage}`, subjects: [subject], storage: storage === "file" ? StorageType.File : StorageType.Memory });
      await publishAll(js, subject, Math.min(200, messages));
      results[storage] = await publishAll(js, subject, messages);
      progress(storage, JSON.stringify(results[storage]));
    }
    const fsync = fdatasyncCost(path.join(nats.dir, "jetstream"), Math.min(messages, 1000));
    progress("fdatasync", JSON.stringify(fsync));
    writeReport(output, {
      benchmark: "nats-sync",
      ...run,
      natsServer: version,
      syncIntervalSupported: syncInterval.accepted,
      syncIntervalProbe: syncInterval.answer,
      messageBytes: PAYLOAD.length,
      fileStream: results.file,
      memoryStream: results.memory,
      writeAndFdatasyncInStoreDir: fsync,
      fileOverMemoryP50: round((results.file?.p50Ms ?? 0) / (results.memory?.p50Ms || 1), 2),
      fdatasyncOverFileP50: round(fsync.p50Ms / (results.file?.p50Ms || 1), 2),
    });
    printWrittenTo(output);
  } finally {
    await connection.close();
    await nats.dispose();
  }
}

runMain(main);
