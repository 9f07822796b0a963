/**
 * What browsers and caches may keep of media, against real nodes: signed URLs that stay the same for a
 * window and change after it, the caching headers of the objects they lead to (embedded /files/ and S3),
 * ETag and 304 on the media reads, the public feed as one cache entry for everyone, the owners of a page
 * looked up in one call, and new public URLs for a reprocessed item.
 */
import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { nanoid } from "nanoid";
import type { MediaJson } from "../../lib/media/media-view";
import { listCacheKey } from "../../lib/media/media-cache";
import { variantKey } from "../../lib/storage/object-keys";
import { S3Storage } from "../../lib/storage/s3-storage";
import { signingWindow } from "../../lib/storage/signed-url";
import { startServices } from "../../scripts/services";
import type { TestServices } from "../../scripts/services";
import { HttpClient, memberCredentials, signUpMember } from "../support/http-client";
import { fixture, sha256 } from "../support/uploads";
import { eventually, startNode, stopAllNodes } from "../support/nodes";
import type { RunningNode } from "../support/nodes";

jest.setTimeout(120_000);

const PUBLIC_URL = "http://shoal.test";
const ENV = {
  SHOAL_PUBLIC_URL: PUBLIC_URL,
  RATE_REGISTRATIONS_PER_IP_PER_HOUR: "10000",
  RATE_API_REQUESTS_PER_IP_PER_MINUTE: "1000000",
};
/** The catalogue without workers: items are made ready by calling what a worker calls. */
const WITHOUT_WORKERS = { ...ENV, SERVICES: "api,users,media,site" };
const TTL_SECONDS = 900;
const CDN = "https://cdn.example.test";

interface Member {
  readonly id: string;
  readonly username: string;
  readonly client: HttpClient;
}

interface Page {
  readonly items: MediaJson[];
  readonly nextCursor: string | null;
}

async function signUp(node: RunningNode): Promise<Member> {
  const { id, username, client } = await signUpMember(node.baseUrl, PUBLIC_URL, { prefix: "cache" });
  return { id, username, client };
}

function metaFor(member: Pick<Member, "id" | "username">, role: "user" | "admin" = "user") {
  return { meta: { user: { id: member.id, role, username: member.username } } };
}

/** A ready item with a stored thumbnail, as upload and processing leave it. */
async function readyItem(node: RunningNode, owner: Member, visibility: "private" | "public" = "public"): Promise<string> {
  const id = nanoid();
  const content = randomBytes(64);
  const originalKey = `media/${id}/original.jpg`;
  await node.runtime.storage.put(originalKey, Readable.from([content]), "image/jpeg");
  await node.broker.call(
    "media.create",
    { id, ownerId: owner.id, kind: "image", mime: "image/jpeg", bytes: content.length, sha256: sha256(content), originalKey },
    metaFor(owner),
  );
  await node.broker.call("media.claimProcessing", { id });
  const thumb = variantKey(id, "thumb", "webp");
  const bytes = randomBytes(32);
  await node.runtime.storage.put(thumb, Readable.from([bytes]), "image/webp");
  await node.broker.call("media.saveVariants", { id, variants: [{ name: "thumb", objectKey: thumb, mime: "image/webp", width: 32, height: 32, bytes: bytes.length }] });
  await node.broker.call("media.completeProcessing", { id, width: 32, height: 32 });
  if (visibility !== "private") await node.broker.call("media.update", { id, visibility }, metaFor(owner));
  return id;
}

/** Runs `read` until two answers in a row come from the same signing window (a boundary may fall between them). */
async function twiceInOneWindow<T>(ttlSeconds: number, read: () => Promise<T>): Promise<[T, T]> {
  for (;;) {
    const window = signingWindow(Math.floor(Date.now() / 1000), ttlSeconds).signedAt;
    const first = await read();
    const second = await read();
    if (signingWindow(Math.floor(Date.now() / 1000), ttlSeconds).signedAt === window) return [first, second];
  }
}

function thumbUrl(media: MediaJson): string {
  const thumb = media.variants.find((variant) => variant.name === "thumb");
  if (!thumb) throw new Error(`no thumb in ${JSON.stringify(media)}`);
  return thumb.url;
}

afterAll(async () => {
  await stopAllNodes();
});

describe("embedded", () => {
  let node: RunningNode;
  let owner: Member;
  let viewer: Member;

  beforeAll(async () => {
    node = await startNode(WITHOUT_WORKERS);
    owner = await signUp(node);
    viewer = await signUp(node);
  });

  const cleanCache = () => node.broker.cacher!.clean();

  test("the same signed URL is handed out twice within its window, though each answer is made afresh", async () => {
    const id = await readyItem(node, owner, "private");
    const [first, second] = await twiceInOneWindow(TTL_SECONDS, async () => {
      await cleanCache();
      return (await owner.client.get<{ media: MediaJson }>(`/api/media/${id}`)).body.media;
    });
    expect(thumbUrl(second)).toBe(thumbUrl(first));
    expect(second.originalUrl).toBe(first.originalUrl);
  });

  test("a /files/ variant is kept by the browser alone, unrevalidated, for what is left of its URL", async () => {
    const id = await readyItem(node, owner, "private");
    const media = (await owner.client.get<{ media: MediaJson }>(`/api/media/${id}`)).body.media;
    const reply = await fetch(new URL(thumbUrl(media), node.baseUrl));
    expect(reply.status).toBe(200);
    const match = /^private, max-age=(\d+), immutable$/.exec(reply.headers.get("cache-control") ?? "");
    expect(match).not.toBeNull();
    const maxAge = Number(match?.[1]);
    expect(maxAge).toBeGreaterThan(TTL_SECONDS / 2 - 5);
    expect(maxAge).toBeLessThanOrEqual(TTL_SECONDS);
  });

  test("GET /api/media/:id has a weak ETag, answers If-None-Match with 304, and a changed item gets a new ETag", async () => {
    const id = await readyItem(node, owner);
    const path = `/api/media/${id}`;
    const first = await owner.client.get(path);
    expect(first.status).toBe(200);
    expect(first.headers.get("cache-control")).toBe("private, no-cache");
    const etag = first.headers.get("etag") ?? "";
    expect(etag).toMatch(/^W\/".+"$/);

    const again = await owner.client.get(path, { headers: { "If-None-Match": etag } });
    expect(again.status).toBe(304);
    expect(again.text).toBe("");

    await owner.client.request("PATCH", path, { json: { title: "renamed" }, csrf: await owner.client.csrfToken() });
    const changed = await owner.client.get<{ media: MediaJson }>(path, { headers: { "If-None-Match": etag } });
    expect(changed.status).toBe(200);
    expect(changed.body.media.title).toBe("renamed");
    expect(changed.headers.get("etag")).not.toBe(etag);
  });

  test("listings have ETags and 304 too; other API answers stay no-store", async () => {
    await readyItem(node, owner);
    for (const path of ["/api/media?scope=public&limit=24", "/api/media?scope=mine"]) {
      const first = await owner.client.get(path);
      expect(first.status).toBe(200);
      expect(first.headers.get("cache-control")).toBe("private, no-cache");
      const again = await owner.client.get(path, { headers: { "If-None-Match": first.headers.get("etag") ?? "" } });
      expect(again.status).toBe(304);
    }
    const me = await owner.client.get("/api/users/me");
    expect(me.headers.get("cache-control")).toBe("no-store");
    expect(me.headers.get("etag")).toBeNull();
  });

  test("a new public item changes the feed's ETag", async () => {
    const path = "/api/media?scope=public&limit=24";
    const before = await viewer.client.get(path);
    await readyItem(node, owner);
    const after = await viewer.client.get(path, { headers: { "If-None-Match": before.headers.get("etag") ?? "" } });
    expect(after.status).toBe(200);
    expect(after.headers.get("etag")).not.toBe(before.headers.get("etag"));
  });

  test("the public feed is one cache entry for every viewer, without the owner's own fields", async () => {
    await readyItem(node, owner);
    await cleanCache();
    const anonymous = new HttpClient(node.baseUrl, { origin: PUBLIC_URL });
    const path = "/api/media?scope=public&limit=24";
    const answers = [await owner.client.get<Page>(path), await viewer.client.get<Page>(path), await anonymous.get<Page>(path)];

    const keys = (await (node.broker.cacher as unknown as { getCacheKeys(): Promise<Array<{ key: string }>> }).getCacheKeys()).map((entry) => entry.key);
    expect(keys.filter((key) => key.startsWith("media.list:public"))).toEqual([listCacheKey("media.list", { scope: "public", limit: 24 }, undefined)]);
    for (const answer of answers) expect(answer.text).toBe(answers[0]!.text);
    // Even the owner's own items show no originalUrl in the shared feed.
    const owned = answers[0]!.body.items.filter((item) => item.owner.id === owner.id);
    expect(owned.length).toBeGreaterThan(0);
    for (const item of owned) expect(item.originalUrl).toBeNull();
  });

  test("a page of 24 items from many owners looks its owners up in one call", async () => {
    const owners = await Promise.all(Array.from({ length: 8 }, () => signUp(node)));
    for (let index = 0; index < 24; index++) await readyItem(node, owners[index % owners.length]!);
    await cleanCache();

    const calls: string[] = [];
    const call = node.broker.call.bind(node.broker);
    const spy = jest.spyOn(node.broker, "call").mockImplementation(((name: string, ...rest: unknown[]) => {
      calls.push(name);
      return (call as (...args: unknown[]) => unknown)(name, ...rest);
    }) as typeof node.broker.call);
    try {
      const page = await viewer.client.get<Page>("/api/media?scope=public&limit=24");
      expect(page.body.items).toHaveLength(24);
      const names = new Map(owners.map((member) => [member.id, member.username]));
      for (const item of page.body.items) expect(item.owner.username).toBe(names.get(item.owner.id));
    } finally {
      spy.mockRestore();
    }
    // The page's own session lookup aside, the owners' profiles are fetched once, for all of them.
    expect(calls.filter((name) => name === "users.get" || name === "users.getMany")).toEqual(["users.getMany"]);
  });
});

describe("signing windows", () => {
  test("a URL changes once its window is over", async () => {
    // A two-second lifetime: windows of one second.
    const node = await startNode({ ...WITHOUT_WORKERS, SIGNED_URL_TTL_SECONDS: "2" });
    const owner = await signUp(node);
    const id = await readyItem(node, owner, "private");
    const read = async () => {
      await node.broker.cacher!.clean();
      return thumbUrl((await owner.client.get<{ media: MediaJson }>(`/api/media/${id}`)).body.media);
    };
    const first = await read();
    const later = await eventually(read, (url) => url !== first, 10_000);
    expect(later).not.toBe(first);
    expect(new URLSearchParams(later.split("?")[1]).get("expires")).not.toBe(new URLSearchParams(first.split("?")[1]).get("expires"));
  });
});

describe("public items behind MEDIA_PUBLIC_BASE_URL", () => {
  test("a reprocessed public item gets new public URLs, and the replaced objects go", async () => {
    const node = await startNode({ ...ENV, MEDIA_PUBLIC_BASE_URL: CDN });
    const owner = await signUp(node);
    const admin = memberCredentials("admin");
    const { user: adminUser } = await node.broker.call<{ user: { id: string } }, object>("users.create", { ...admin, role: "admin" });

    const content = fixture("exif_jpeg/orientation_1.jpg");
    const id = nanoid();
    const originalKey = `media/${id}/original.jpg`;
    await node.runtime.storage.put(originalKey, Readable.from([content]), "image/jpeg");
    await node.broker.call(
      "media.create",
      { id, ownerId: owner.id, kind: "image", mime: "image/jpeg", bytes: content.length, sha256: sha256(content), originalKey },
      metaFor(owner),
    );
    const ready = () => node.broker.call<{ media: MediaJson }, object>("media.get", { id }, metaFor(owner)).then((answer) => answer.media);
    await eventually(ready, (media) => media.status === "ready", 60_000);
    const before = (await node.broker.call<{ media: MediaJson }, object>("media.update", { id, visibility: "public" }, metaFor(owner))).media;
    expect(thumbUrl(before).startsWith(`${CDN}/media/${id}/`)).toBe(true);

    await node.broker.call("media.reprocess", { id }, metaFor({ id: adminUser.id, username: admin.username }, "admin"));
    const after = await eventually(ready, (media) => media.status === "ready" && thumbUrl(media) !== thumbUrl(before), 60_000);
    expect(thumbUrl(after).startsWith(`${CDN}/media/${id}/`)).toBe(true);
    const keyOf = (url: string) => url.slice(`${CDN}/`.length);
    for (const variant of before.variants) {
      const replacement = after.variants.find((other) => other.name === variant.name);
      expect(replacement?.url).not.toBe(variant.url);
      // The replaced bytes are gone; the new ones are there.
      expect(await node.runtime.storage.head(keyOf(variant.url))).toBeUndefined();
      expect(await node.runtime.storage.head(keyOf(replacement!.url))).toBeDefined();
    }
  });
});

describe("S3", () => {
  let services: TestServices;
  let storage: S3Storage;
  let endpoint: string;
  let bucket: string;

  beforeAll(async () => {
    services = await startServices({ s3: true });
    const s3 = services.s3!;
    ({ endpoint, bucket } = s3);
    storage = new S3Storage({
      endpoint: s3.endpoint,
      region: s3.region,
      bucket: s3.bucket,
      accessKeyId: s3.accessKeyId,
      secretAccessKey: s3.secretAccessKey,
      forcePathStyle: s3.forcePathStyle,
    });
  });

  afterAll(async () => {
    await storage?.close();
    await services?.stop();
  });

  test("a presigned URL is the same within its window, and the store sends it as private and immutable", async () => {
    const key = variantKey(nanoid(), "thumb", "webp");
    await storage.put(key, Readable.from([randomBytes(16)]), "image/webp");
    const [first, second] = await twiceInOneWindow(TTL_SECONDS, () => storage.signedUrl(key, { expiresInSeconds: TTL_SECONDS }));
    expect(second).toBe(first);
    const reply = await fetch(first);
    expect(reply.status).toBe(200);
    expect(reply.headers.get("cache-control")).toBe(`private, max-age=${TTL_SECONDS / 2}, immutable`);
  });

  test("a versioned variant is stored with Cache-Control for a CDN to keep it for a year", async () => {
    const key = variantKey(nanoid(), "display", "webp");
    await storage.put(key, Readable.from([randomBytes(16)]), "image/webp");
    const reply = await fetch(`${endpoint}/${bucket}/${key}`);
    expect(reply.status).toBe(200);
    expect(reply.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
  });
});
