/**
 * The tus handler itself (lib/uploads/tus-uploads.ts) on the embedded store, without a gateway in front:
 * what it refuses on its own, which ids reach the store, and what a failure on our side answers and logs.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseSettings } from "../../config/settings";
import type { Settings } from "../../config/settings";
import { createUploadStore } from "../../lib/uploads/tus-stores";
import type { UploadStore } from "../../lib/uploads/tus-stores";
import { TusUploads } from "../../lib/uploads/tus-uploads";
import type { TusUploadHooks } from "../../lib/uploads/tus-uploads";
import { acceptingHooks, recordingLogger, requestIdOf, serve, TUS_PATH, tusFetch } from "../support/tus-harness";
import type { LogEntry, Served } from "../support/tus-harness";

const OWNER = "owner_1";
const OCTETS = { "Content-Type": "application/offset+octet-stream" } as const;

let dataDir: string;
let settings: Settings;

beforeAll(() => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "shoal-tus-handler-"));
  settings = parseSettings({ SHOAL_DATA_DIR: dataDir, PORT: "0" });
});

afterAll(() => {
  fs.rmSync(dataDir, { recursive: true, force: true });
});

interface Running {
  readonly served: Served;
  readonly store: UploadStore;
  readonly log: ReturnType<typeof recordingLogger>;
  readonly baseUrl: string;
}

const running: Running[] = [];

afterEach(async () => {
  await Promise.all(running.splice(0).map((item) => item.served.close()));
});

/** A handler on a store of its own, which the test may alter before use. */
async function start(alter: (store: UploadStore) => void = () => undefined, hooks: TusUploadHooks = acceptingHooks()): Promise<Running> {
  const store = createUploadStore(settings.storage, settings.uploads.dir, undefined, settings.uploads.expirySeconds * 1000);
  alter(store);
  const log = recordingLogger();
  const uploads = new TusUploads({ path: TUS_PATH, uploads: settings.uploads, storage: settings.storage, redis: undefined, hooks, store, log, requestIdOf });
  const served = await serve((req, res) => uploads.handle(req, res));
  const started = { served, store, log, baseUrl: served.baseUrl };
  running.push(started);
  return started;
}

async function create(baseUrl: string, length = 1000): Promise<string> {
  const answer = await tusFetch(baseUrl, OWNER, "POST", TUS_PATH, { "Upload-Length": String(length), "Upload-Metadata": `filetype ${btoa("image/png")}` });
  expect(answer.status).toBe(201);
  return answer.headers.get("location")!;
}

/** The JSON error shape (a HEAD answer has its headers only). */
async function expectJsonError(answer: Response, status: number, code: string, method = "DELETE"): Promise<void> {
  expect({ status: answer.status, type: answer.headers.get("content-type") }).toEqual({ status, type: expect.stringMatching(/^application\/json/) });
  if (method !== "HEAD") expect(await answer.json()).toEqual({ error: { code, message: expect.any(String), fields: expect.any(Object) } });
}

function errorsNaming(entries: readonly LogEntry[], requestId: string): LogEntry[] {
  return entries.filter((entry) => entry.level === "error" && entry.message.includes(requestId));
}

describe("the handler on its own", () => {
  test("refuses X-HTTP-Method-Override, so a HEAD cannot delete an upload even when nothing in front checked it", async () => {
    const { baseUrl, store } = await start();
    const location = await create(baseUrl);
    expect((await tusFetch(baseUrl, OWNER, "PATCH", location, { ...OCTETS, "Upload-Offset": "0" }, new Uint8Array(10))).status).toBe(204);

    const overridden = await tusFetch(baseUrl, OWNER, "HEAD", location, { "X-HTTP-Method-Override": "DELETE" });
    expect(overridden.status).toBe(400);
    expect(overridden.headers.get("content-type")).toMatch(/^application\/json/);

    const head = await tusFetch(baseUrl, OWNER, "HEAD", location);
    expect(head.status).toBe(200);
    expect(head.headers.get("upload-offset")).toBe("10");
    expect((await store.getUpload(location.split("/").pop()!)).offset).toBe(10);
  });

  test("an id not of the shape it makes answers 404 without the store being asked", async () => {
    const calls: string[] = [];
    const { baseUrl } = await start((store) => {
      for (const method of ["getUpload", "remove", "write", "declareUploadLength"] as const) {
        const original = store[method].bind(store) as (...args: unknown[]) => Promise<unknown>;
        (store as unknown as Record<string, unknown>)[method] = (...args: unknown[]) => {
          calls.push(`${method}(${String(args[0])})`);
          return original(...args);
        };
      }
    });
    for (const id of ["..%2F..%2Fetc%2Fpasswd", "u.....................", `u${"A".repeat(300)}`, "uAAAAAAAAAA%2FAAAAAAAAAA", "u_short"]) {
      for (const method of ["HEAD", "DELETE", "PATCH"]) {
        const headers = method === "PATCH" ? { ...OCTETS, "Upload-Offset": "0" } : undefined;
        const answer = await tusFetch(baseUrl, OWNER, method, `${TUS_PATH}/${id}`, headers, method === "PATCH" ? new Uint8Array(5) : undefined);
        await expectJsonError(answer, 404, "not_found", method);
      }
    }
    expect(calls).toEqual([]);
  });
});

describe("the outcome's store (Redis in cluster mode) out of reach", () => {
  test("the finished upload still answers with its item, keeps the item's quota, and the lost outcome is a warning", async () => {
    const hooks = acceptingHooks();
    const { baseUrl, log } = await start(undefined, {
      ...hooks,
      recordOutcome: async () => {
        throw new Error("Redis is unavailable");
      },
    });
    const location = await create(baseUrl, 10);
    const answer = await tusFetch(baseUrl, OWNER, "PATCH", location, { ...OCTETS, "Upload-Offset": "0", "X-Test-Request": "req-outcome-1" }, new Uint8Array(10));
    expect({ status: answer.status, mediaId: answer.headers.get("shoal-media-id") }).toEqual({ status: 204, mediaId: "m_accepted" });
    expect(hooks.released).toEqual([]);
    expect(log.entries.map(({ level, message }) => ({ level, message }))).toEqual([
      { level: "warn", message: expect.stringMatching(/its outcome was not kept \(request req-outcome-1\): Redis is unavailable$/) },
    ]);
  });

  test("an upload refused at its end is still refused, and its quota given back, when its outcome cannot be kept either", async () => {
    const hooks = acceptingHooks();
    const { baseUrl } = await start(undefined, {
      ...hooks,
      accept: async () => {
        throw new Error("the catalogue is unreachable");
      },
      recordOutcome: async () => {
        throw new Error("Redis is unavailable");
      },
    });
    const location = await create(baseUrl, 10);
    const answer = await tusFetch(baseUrl, OWNER, "PATCH", location, { ...OCTETS, "Upload-Offset": "0" }, new Uint8Array(10));
    await expectJsonError(answer, 500, "internal");
    expect(hooks.released).toEqual(hooks.reserved);
  });
});

describe("a failure on our side answers the generic JSON 500 and is logged with the request id and its stack", () => {
  test("the store cannot read an upload's state", async () => {
    const { baseUrl, log } = await start((store) => {
      store.getUpload = async () => {
        throw new Error("the disk is on fire");
      };
    });
    const answer = await tusFetch(baseUrl, OWNER, "DELETE", `${TUS_PATH}/uAAAAAAAAAAAAAAAAAAAAA`, { "X-Test-Request": "req-read-1" });
    await expectJsonError(answer, 500, "internal");
    const [entry, ...more] = errorsNaming(log.entries, "req-read-1");
    expect(more).toEqual([]);
    expect(entry?.details[0]).toBeInstanceOf(Error);
    expect((entry?.details[0] as Error).stack).toMatch(/the disk is on fire\n\s+at /);
  });

  test("the store fails while a PATCH streams in", async () => {
    const { baseUrl, log } = await start((store) => {
      store.write = async () => {
        throw new Error("no space left on the device");
      };
    });
    const location = await create(baseUrl);
    const answer = await tusFetch(baseUrl, OWNER, "PATCH", location, { ...OCTETS, "Upload-Offset": "0", "X-Test-Request": "req-write-1" }, new Uint8Array(100));
    await expectJsonError(answer, 500, "internal");
    const [entry] = errorsNaming(log.entries, "req-write-1");
    expect((entry?.details[0] as Error | undefined)?.stack).toMatch(/no space left on the device\n\s+at /);
  });

  test("turning the finished upload into a media item fails unexpectedly", async () => {
    const hooks = acceptingHooks();
    const { baseUrl, log } = await start(undefined, {
      ...hooks,
      accept: async () => {
        throw new Error("the catalogue is unreachable");
      },
    });
    const location = await create(baseUrl, 10);
    const answer = await tusFetch(baseUrl, OWNER, "PATCH", location, { ...OCTETS, "Upload-Offset": "0", "X-Test-Request": "req-finish-1" }, new Uint8Array(10));
    await expectJsonError(answer, 500, "internal");
    const [entry] = errorsNaming(log.entries, "req-finish-1");
    expect((entry?.details[0] as Error | undefined)?.stack).toMatch(/the catalogue is unreachable\n\s+at /);
    // The refused upload's quota is given back.
    expect(hooks.released).toEqual(hooks.reserved);
  });

  test("a refusal of the client's own making (4xx) is not logged as ours", async () => {
    const { baseUrl, log } = await start();
    const location = await create(baseUrl);
    const answer = await tusFetch(baseUrl, OWNER, "PATCH", location, { ...OCTETS, "Upload-Offset": "5", "X-Test-Request": "req-conflict-1" }, new Uint8Array(10));
    await expectJsonError(answer, 409, "offset_conflict");
    expect(log.entries).toEqual([]);
  });
});
