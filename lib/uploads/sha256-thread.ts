import { Worker } from "node:worker_threads";

/** Plain JavaScript, evaluated as the worker's code, so that it runs the same from sources and from a build. */
const WORKER_SOURCE = `
const { parentPort } = require("node:worker_threads");
const { createHash } = require("node:crypto");
const hashes = new Map();
parentPort.on("message", ({ op, id, data, length }) => {
  if (op === "update") {
    let hash = hashes.get(id);
    if (hash === undefined) hashes.set(id, (hash = createHash("sha256")));
    hash.update(data.subarray(0, length));
    parentPort.postMessage({ op, id, bytes: length, data }, [data.buffer]);
  } else if (op === "digest") {
    const hash = hashes.get(id) ?? createHash("sha256");
    hashes.delete(id);
    parentPort.postMessage({ op, id, hex: hash.digest("hex") });
  } else if (op === "forget") {
    hashes.delete(id);
  }
});
`;

/**
 * Bytes gathered before they are handed to the thread: one message per batch. Batches are buffers that
 * travel to the thread and back (transferred, not copied) and are used again.
 */
const BATCH_BYTES = 1024 * 1024;
/** Bytes handed over but not yet hashed above which update() asks its caller to wait. */
const MAX_IN_FLIGHT_BYTES = 8 * 1024 * 1024;
/** Batch buffers kept for reuse. */
const SPARE_BATCHES = 16;
/** How long the thread stays with nothing to hash before it is stopped (started again on the next upload). */
const IDLE_STOP_MS = 30_000;

type Reply = { op: "update"; id: number; bytes: number; data: Uint8Array } | { op: "digest"; id: number; hex: string };

let shared: Sha256Thread | undefined;

/**
 * SHA-256 on a worker thread. Hashing a large upload on the event loop would take about a second per GiB
 * from every other request on this node; here the event loop only copies the bytes into batches.
 */
export class Sha256Thread {
  private worker: Worker | undefined;
  private nextId = 1;
  private readonly hashes = new Map<number, OffThreadHash>();
  private readonly spareBatches: Uint8Array[] = [];
  /** Messages the thread has yet to answer: while there are any, the thread keeps the process up. */
  private unanswered = 0;
  private idleTimer: NodeJS.Timeout | undefined;

  constructor(private readonly idleStopMs = IDLE_STOP_MS) {}

  /** The process's one hashing thread, started on first use. */
  static shared(): Sha256Thread {
    shared ??= new Sha256Thread();
    return shared;
  }

  create(): OffThreadHash {
    const hash = new OffThreadHash(this, this.nextId++);
    this.hashes.set(hash.id, hash);
    return hash;
  }

  /** Whether the thread is started: it is stopped after a while with nothing to hash. */
  get running(): boolean {
    return this.worker !== undefined;
  }

  /** @internal */
  batch(): Uint8Array {
    return this.spareBatches.pop() ?? new Uint8Array(BATCH_BYTES);
  }

  /** @internal */
  post(message: { op: "update" | "digest" | "forget"; id: number; data?: Uint8Array; length?: number }): void {
    if (message.op === "forget") {
      this.hashes.delete(message.id);
      if (!this.worker) return;
      this.stopWhenIdle();
    }
    const worker = this.start();
    if (message.data) worker.postMessage(message, [message.data.buffer as ArrayBuffer]);
    else worker.postMessage(message);
    if (message.op !== "forget" && this.unanswered++ === 0) worker.ref();
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(WORKER_SOURCE, { eval: true });
    worker.on("message", (reply: Reply) => {
      const hash = this.hashes.get(reply.id);
      if (reply.op === "digest") this.hashes.delete(reply.id);
      else if (this.spareBatches.length < SPARE_BATCHES) this.spareBatches.push(reply.data);
      if (--this.unanswered === 0) {
        worker.unref();
        this.stopWhenIdle();
      }
      hash?.settle(reply);
    });
    const fail = (error: Error) => {
      this.worker = undefined;
      this.unanswered = 0;
      const failed = [...this.hashes.values()];
      this.hashes.clear();
      for (const hash of failed) hash.fail(error);
    };
    worker.on("error", fail);
    worker.on("exit", (code) => fail(new Error(`the hashing thread exited (code ${code})`)));
    // Idle, it is never the reason the process stays up (unref after the listeners: adding one refs it again).
    worker.unref();
    this.worker = worker;
    return worker;
  }

  /** An idle thread still holds its memory: stopped once nothing has been asked of it for idleStopMs. */
  private stopWhenIdle(): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => {
      // A hash in progress (an upload paused between chunks) lives on the thread: it stays.
      if (!this.worker || this.unanswered > 0 || this.hashes.size > 0) return;
      const worker = this.worker;
      this.worker = undefined;
      worker.removeAllListeners();
      void worker.terminate();
    }, this.idleStopMs).unref();
  }
}

/** One running SHA-256 on the hashing thread. update() in order, then digest() once. */
export class OffThreadHash {
  private batch: Uint8Array | undefined;
  private batchBytes = 0;
  private inFlight = 0;
  private error: Error | undefined;
  private drainWaiters: Array<() => void> = [];
  private digestWaiter: { resolve: (hex: string) => void; reject: (error: Error) => void } | undefined;

  constructor(
    private readonly thread: Sha256Thread,
    readonly id: number,
  ) {}

  /** Adds bytes; answers a promise to wait for when too many are still waiting to be hashed. */
  update(chunk: Buffer): Promise<void> | undefined {
    if (this.error) return undefined;
    for (let at = 0; at < chunk.length; ) {
      const batch = (this.batch ??= this.thread.batch());
      const taken = Math.min(chunk.length - at, batch.length - this.batchBytes);
      batch.set(chunk.subarray(at, at + taken), this.batchBytes);
      this.batchBytes += taken;
      at += taken;
      if (this.batchBytes === batch.length) this.send();
    }
    if (this.inFlight <= MAX_IN_FLIGHT_BYTES) return undefined;
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  /** For a Transform: adds the chunk, then passes it on once the thread can take more bytes. */
  passOn(chunk: Buffer, callback: (error: null, chunk: Buffer) => void): void {
    const wait = this.update(chunk);
    if (wait) void wait.then(() => callback(null, chunk));
    else callback(null, chunk);
  }

  digest(): Promise<string> {
    if (this.error) return Promise.reject(this.error);
    this.send();
    return new Promise((resolve, reject) => {
      this.digestWaiter = { resolve, reject };
      this.thread.post({ op: "digest", id: this.id });
    });
  }

  forget(): void {
    this.batch = undefined;
    this.batchBytes = 0;
    this.thread.post({ op: "forget", id: this.id });
    this.releaseWaiters();
  }

  /** @internal */
  settle(reply: Reply): void {
    if (reply.op === "digest") {
      this.digestWaiter?.resolve(reply.hex);
      return;
    }
    this.inFlight -= reply.bytes;
    if (this.inFlight <= MAX_IN_FLIGHT_BYTES) this.releaseWaiters();
  }

  /** @internal */
  fail(error: Error): void {
    this.error = error;
    this.digestWaiter?.reject(error);
    this.releaseWaiters();
  }

  private send(): void {
    if (this.batch === undefined || this.batchBytes === 0) return;
    this.thread.post({ op: "update", id: this.id, data: this.batch, length: this.batchBytes });
    this.inFlight += this.batchBytes;
    this.batch = undefined;
    this.batchBytes = 0;
  }

  private releaseWaiters(): void {
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const resolve of waiters) resolve();
  }
}
