import sharp from "sharp";
import { HttpClient } from "../support/http-client";
import { eventually, startNode, stopAllNodes } from "../support/nodes";
import type { RunningNode } from "../support/nodes";
import { fixture } from "../support/uploads";
import type { MediaJson } from "../../lib/media/media-view";

let node: RunningNode;
let client: HttpClient;
let token: string;

async function upload(file: string, name: string): Promise<MediaJson> {
  const form = new FormData();
  form.append("file", new Blob([fixture(file)]), name);
  const response = await fetch(`${node.baseUrl}/api/media`, { method: "POST", headers: { Authorization: `Bearer ${token}` }, body: form });
  expect(response.status).toBe(201);
  return ((await response.json()) as { media: MediaJson }).media;
}

async function settled(id: string): Promise<MediaJson> {
  const answer = await eventually(
    () => client.get<{ media: MediaJson }>(`/api/media/${id}`, { bearer: token }),
    (response) => response.body.media.status === "ready" || response.body.media.status === "failed",
    60_000,
  );
  return answer.body.media;
}

beforeAll(async () => {
  node = await startNode({});
  client = new HttpClient(node.baseUrl, { origin: node.publicUrl });
  const signedUp = await client.post<{ token: string }>("/api/auth/register", {
    username: "photographer",
    email: "photographer@example.test",
    password: "a long enough passphrase",
  });
  token = signedUp.body.token;
});

afterAll(() => stopAllNodes());

test("an uploaded phone photo becomes ready with upright, metadata-free variants and a placeholder", async () => {
  const media = await settled((await upload("exif_jpeg/orientation_6.jpg", "phone.jpg")).id);
  expect(media).toMatchObject({ status: "ready", reason: null, width: 1800, height: 1200, placeholder: expect.any(String) });
  expect(media.variants.map((variant) => variant.name).sort()).toEqual(["display", "display-jpeg", "thumb"]);
  for (const variant of media.variants) {
    const response = await fetch(new URL(variant.url, node.baseUrl));
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe(variant.mime);
    const metadata = await sharp(Buffer.from(await response.arrayBuffer())).metadata();
    expect(metadata.width).toBeGreaterThan(metadata.height!);
    expect(metadata.exif).toBeUndefined();
  }
  const thumb = media.variants.find((variant) => variant.name === "thumb")!;
  expect(Math.max(thumb.width!, thumb.height!)).toBeLessThanOrEqual(320);
});

test("a truncated JPEG fails with a reason the owner can read, and is not retried", async () => {
  const media = await settled((await upload("hostile_images/truncated_10000b.jpg", "cut.jpg")).id);
  expect(media).toMatchObject({ status: "failed", reason: "corrupt", variants: [] });
});

test("a HEIC photo this build cannot decode fails cleanly as unsupported_format", async () => {
  const media = await settled((await upload("image_formats/heic_iphone7.heic", "iphone.heic")).id);
  expect(media).toMatchObject({ status: "failed", reason: "unsupported_format" });
});

test("an uploaded 1080p video becomes ready with 720p and 360p H.264 renditions and a poster", async () => {
  const media = await settled((await upload("video/mp4_h264_aac51_1080p60.mp4", "clip.mp4")).id);
  expect(media).toMatchObject({ status: "ready", width: 1920, height: 1080 });
  expect(media.variants.map((variant) => variant.name).sort()).toEqual(["360p", "720p", "poster"]);
  const rendition = media.variants.find((variant) => variant.name === "720p")!;
  expect(rendition).toMatchObject({ mime: "video/mp4", width: 1280, height: 720 });
  const response = await fetch(new URL(rendition.url, node.baseUrl), { headers: { Range: "bytes=0-99" } });
  expect(response.status).toBe(206);
}, 120_000);

test("a small WebM without sound is not upscaled: one rendition at its own size", async () => {
  const media = await settled((await upload("video/webm_vp9_bbb_10s.webm", "small.webm")).id);
  expect(media).toMatchObject({ status: "ready", width: 320, height: 180 });
  expect(media.variants.find((variant) => variant.name === "360p")).toMatchObject({ width: 320, height: 180 });
}, 120_000);

test("an uploaded MP3 becomes ready with AAC audio, waveform peaks and its cover art", async () => {
  const media = await settled((await upload("audio/mp3_id3v24_cover.mp3", "song.mp3")).id);
  expect(media.status).toBe("ready");
  expect(media.variants.map((variant) => variant.name).sort()).toEqual(["audio", "cover", "waveform"]);
  const waveform = media.variants.find((variant) => variant.name === "waveform")!;
  const document = (await (await fetch(new URL(waveform.url, node.baseUrl))).json()) as { peaks: number[] };
  expect(document.peaks).toHaveLength(800);
  expect(document.peaks.every((peak) => peak >= 0 && peak <= 1)).toBe(true);
  expect(media.durationSeconds).toBeCloseTo(1.07, 1);
  // No title was given at upload: the file's own tags provide one.
  expect(media.title).toBe("Artificial.Music – [herbal tea]");
}, 120_000);

test("an admin reprocesses an item: it goes back to the queue and comes out ready again, with its variants replaced, not duplicated", async () => {
  const media = await settled((await upload("exif_jpeg/orientation_1.jpg", "again.jpg")).id);
  expect(media.status).toBe("ready");
  const refused = await client.post(`/api/admin/media/${media.id}/reprocess`, undefined, { bearer: token });
  expect(refused.status).toBe(403);

  await node.broker.call("users.create", { username: "curator", email: "curator@example.test", password: "an admin passphrase", role: "admin" });
  const adminClient = new HttpClient(node.baseUrl, { origin: node.publicUrl });
  const admin = await adminClient.post<{ token: string }>("/api/auth/login", { login: "curator", password: "an admin passphrase" });
  const queued = await adminClient.post<{ media: MediaJson }>(`/api/admin/media/${media.id}/reprocess`, undefined, { bearer: admin.body.token });
  expect(queued.status).toBe(202);
  expect(queued.body.media.status).toMatch(/^(uploaded|processing|ready)$/);
  const again = await settled(media.id);
  expect(again.status).toBe("ready");
  expect(again.variants.map((variant) => variant.name).sort()).toEqual(["display", "display-jpeg", "thumb"]);
});
