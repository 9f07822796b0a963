/**
 * The checks before storing (see upload-checks.test.ts) in cluster mode, where the original goes to S3
 * as it streams in and a tus upload is staged in the bucket: a refusal leaves no object there either.
 */
import { ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import { envFor, startServices } from "../../scripts/services";
import type { TestServices } from "../../scripts/services";
import { signUpMember } from "../support/http-client";
import type { HttpClient } from "../support/http-client";
import { jpegWithCommentsBeforeFrame, tiledDeflatePageHeader, writeTiff } from "../support/crafted-images";
import { startNode, stopAllNodes } from "../support/nodes";
import type { RunningNode } from "../support/nodes";
import { fixture, tusUpload } from "../support/uploads";
import type { MediaJson } from "../../lib/media/media-view";

interface Answer {
  readonly status: number;
  readonly body: { media?: MediaJson; error?: { code: string } };
}

let services: TestServices;
let node: RunningNode;
let s3: S3Client;

beforeAll(async () => {
  services = await startServices({ mariadb: { replicas: 1 }, redis: true, nats: true, s3: true });
  node = await startNode({ ...envFor(services), SERVICES: "api,users,media,site", RATE_REGISTRATIONS_PER_IP_PER_HOUR: "1000" });
  await node.broker.waitForServices(["users", "media", "site"], 20_000);
  const settings = services.s3!;
  s3 = new S3Client({
    endpoint: settings.endpoint,
    region: settings.region,
    forcePathStyle: settings.forcePathStyle,
    credentials: { accessKeyId: settings.accessKeyId, secretAccessKey: settings.secretAccessKey },
  });
}, 120_000);

afterAll(async () => {
  s3?.destroy();
  await stopAllNodes();
  await services?.stop();
});

async function bucketKeys(): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: services.s3!.bucket, ContinuationToken: token }));
    for (const object of page.Contents ?? []) if (object.Key) keys.push(object.Key);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return keys.sort();
}

async function send(via: "multipart" | "tus", token: string, bytes: Buffer, filename: string): Promise<Answer> {
  if (via === "tus") {
    return tusUpload(bytes, { endpoint: `${node.baseUrl}/api/uploads`, token, metadata: { filename, filetype: "application/octet-stream" } }).then(
      () => ({ status: 201, body: {} }),
      (error: { status: number; body: string }) => ({ status: error.status, body: JSON.parse(error.body) as Answer["body"] }),
    );
  }
  const form = new FormData();
  form.append("file", new Blob([bytes]), filename);
  const response = await fetch(`${node.baseUrl}/api/media`, { method: "POST", headers: { Authorization: `Bearer ${token}` }, body: form });
  return { status: response.status, body: (await response.json()) as Answer["body"] };
}

async function expectNothingLeft(client: HttpClient, token: string, keysBefore: readonly string[]): Promise<void> {
  expect(await bucketKeys()).toEqual(keysBefore);
  const list = await client.get<{ items: MediaJson[] }>("/api/media?scope=mine", { bearer: token });
  expect(list.body.items).toEqual([]);
  const me = await client.get<{ user: { usedBytes: number } }>("/api/users/me", { bearer: token });
  expect(me.body.user.usedBytes).toBe(0);
}

test.each([
  ["multipart", "a 50000×50000 JPEG behind 300 kB of comments", () => jpegWithCommentsBeforeFrame(50_000, 50_000, 300 * 1024), "bomb.jpg"],
  ["tus", "a 50000×50000 JPEG behind 300 kB of comments", () => jpegWithCommentsBeforeFrame(50_000, 50_000, 300 * 1024), "bomb.jpg"],
  ["multipart", "a 60000×60000 TIFF whose directory follows 2 MB of data", () => writeTiff("II", [tiledDeflatePageHeader(60_000, 60_000)], 2 * 1024 * 1024), "scan.tif"],
  ["tus", "a 60000×60000 TIFF whose directory follows 2 MB of data", () => writeTiff("II", [tiledDeflatePageHeader(60_000, 60_000)], 2 * 1024 * 1024), "scan.tif"],
] as const)("%s: %s is refused with 422 image_too_large, leaving nothing in the bucket", async (via, _what, make, filename) => {
  const { client, token } = await signUpMember(node.baseUrl, node.publicUrl, { prefix: "clustercheck" });
  const before = await bucketKeys();
  const answer = await send(via, token, make(), filename);
  expect(answer).toMatchObject({ status: 422, body: { error: { code: "image_too_large" } } });
  await expectNothingLeft(client, token, before);
});

test("multipart: a body cut off in the middle of the file answers 400 invalid_multipart, leaving nothing in the bucket", async () => {
  const { client, token } = await signUpMember(node.baseUrl, node.publicUrl, { prefix: "clustercheck" });
  const before = await bucketKeys();
  const boundary = "----shoal-cluster-boundary";
  const png = fixture("image_formats/png_rgba_alpha.png");
  const head = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="alpha.png"\r\nContent-Type: image/png\r\n\r\n`);
  const response = await fetch(`${node.baseUrl}/api/media`, {
    method: "POST",
    headers: { Authorization: `Bearer ${token}`, "Content-Type": `multipart/form-data; boundary=${boundary}` },
    body: Buffer.concat([head, png.subarray(0, png.length / 2)]),
  });
  expect(response.status).toBe(400);
  expect(await response.json()).toMatchObject({ error: { code: "invalid_multipart" } });
  await expectNothingLeft(client, token, before);
});
