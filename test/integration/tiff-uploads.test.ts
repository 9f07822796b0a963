/**
 * TIFF uploads through HTTP on a node that processes them: accepted in both byte orders, compressed
 * or tiled, made into the same variants as other images, with page one of a multi-page file as the image.
 */
import sharp from "sharp";
import { signUpMember } from "../support/http-client";
import type { HttpClient } from "../support/http-client";
import { solidRgbPage, writeTiff } from "../support/crafted-images";
import { eventually, startNode, stopAllNodes } from "../support/nodes";
import type { RunningNode } from "../support/nodes";
import type { MediaJson } from "../../lib/media/media-view";

type Colour = readonly [number, number, number];

const ORANGE: Colour = [230, 120, 20];
const RED: Colour = [255, 0, 0];
const BLUE: Colour = [0, 0, 255];

let node: RunningNode;
let client: HttpClient;
let token: string;

beforeAll(async () => {
  node = await startNode({});
  ({ client, token } = await signUpMember(node.baseUrl, node.publicUrl, { prefix: "scanner" }));
});

afterAll(() => stopAllNodes());

function solid(width: number, height: number, [r, g, b]: Colour) {
  return sharp({ create: { width, height, channels: 3, background: { r, g, b } } });
}

async function upload(bytes: Buffer, name: string): Promise<MediaJson> {
  const form = new FormData();
  form.append("file", new Blob([bytes]), name);
  const response = await fetch(`${node.baseUrl}/api/media`, { method: "POST", headers: { Authorization: `Bearer ${token}` }, body: form });
  const body = (await response.json()) as { media: MediaJson };
  expect({ status: response.status, body }).toMatchObject({ status: 201, body: { media: { kind: "image", mime: "image/tiff" } } });
  return body.media;
}

async function settled(id: string): Promise<MediaJson> {
  const answer = await eventually(
    () => client.get<{ media: MediaJson }>(`/api/media/${id}`, { bearer: token }),
    (response) => response.body.media.status === "ready" || response.body.media.status === "failed",
    60_000,
  );
  return answer.body.media;
}

/** The variant's size and average colour, as a browser would get it. */
async function fetchVariant(media: MediaJson, name: string): Promise<{ width: number; height: number; mime: string | null; colour: number[] }> {
  const variant = media.variants.find((candidate) => candidate.name === name)!;
  const response = await fetch(new URL(variant.url, node.baseUrl));
  expect(response.status).toBe(200);
  const bytes = Buffer.from(await response.arrayBuffer());
  const { width, height } = await sharp(bytes).metadata();
  const { channels } = await sharp(bytes).stats();
  return { width: width!, height: height!, mime: response.headers.get("content-type"), colour: channels.slice(0, 3).map((channel) => Math.round(channel.mean)) };
}

function expectColour(actual: readonly number[], expected: Colour): void {
  actual.forEach((value, index) => expect(Math.abs(value - expected[index]!)).toBeLessThanOrEqual(8));
}

test.each([
  ["uncompressed, little-endian (sharp)", () => solid(800, 600, ORANGE).tiff().toBuffer()],
  ["LZW-compressed", () => solid(800, 600, ORANGE).tiff({ compression: "lzw" }).toBuffer()],
  ["tiled and Deflate-compressed", () => solid(800, 600, ORANGE).tiff({ compression: "deflate", tile: true, tileWidth: 256, tileHeight: 256 }).toBuffer()],
  // 1.4 MB of pixels before the directory.
  ["big-endian", async () => writeTiff("MM", [solidRgbPage(800, 600, ORANGE)])],
])("a %s TIFF becomes ready with thumb, display, display-jpeg and a placeholder", async (_what, make) => {
  const media = await settled((await upload(await make(), "scan.tif")).id);
  expect(media).toMatchObject({ status: "ready", reason: null, width: 800, height: 600, placeholder: expect.any(String) });
  expect(media.variants.map((variant) => variant.name).sort()).toEqual(["display", "display-jpeg", "thumb"]);
  const thumb = await fetchVariant(media, "thumb");
  expect(thumb).toMatchObject({ width: 320, height: 240, mime: "image/webp" });
  const display = await fetchVariant(media, "display");
  expect(display).toMatchObject({ width: 800, height: 600, mime: "image/webp" });
  expectColour(display.colour, ORANGE);
  const jpeg = await fetchVariant(media, "display-jpeg");
  expect(jpeg).toMatchObject({ width: 800, height: 600, mime: "image/jpeg" });
  expectColour(jpeg.colour, ORANGE);
});

test("a 6 MB LZW TIFF as libvips writes it, its directory after the image data, becomes ready", async () => {
  const noise = sharp({ create: { width: 1500, height: 1000, channels: 3, background: "#000000", noise: { type: "gaussian", mean: 128, sigma: 40 } } });
  const bytes = await sharp(await noise.png().toBuffer()).tiff({ compression: "lzw" }).toBuffer();
  expect(bytes.readUInt32LE(4)).toBeGreaterThan(5 * 1024 * 1024);
  const media = await settled((await upload(bytes, "noise.tif")).id);
  expect(media).toMatchObject({ status: "ready", width: 1500, height: 1000, bytes: bytes.length });
  expect(await fetchVariant(media, "display")).toMatchObject({ width: 1500, height: 1000 });
});

test("a multi-page TIFF is shown by its first page: page one red, page two blue, the variants are red", async () => {
  const pages = await Promise.all([solid(400, 300, RED).png().toBuffer(), solid(400, 300, BLUE).png().toBuffer()]);
  const bytes = await sharp(pages, { join: { animated: true } }).tiff().toBuffer();
  expect((await sharp(bytes).metadata()).pages).toBe(2);
  const media = await settled((await upload(bytes, "two-pages.tif")).id);
  expect(media).toMatchObject({ status: "ready", width: 400, height: 300 });
  expectColour((await fetchVariant(media, "display")).colour, RED);
  expectColour((await fetchVariant(media, "thumb")).colour, RED);
});

test("a multi-page TIFF whose pages differ in size takes its size from page one", async () => {
  const bytes = writeTiff("II", [solidRgbPage(300, 200, BLUE), solidRgbPage(1200, 900, RED)]);
  const media = await settled((await upload(bytes, "pages.tif")).id);
  expect(media).toMatchObject({ status: "ready", width: 300, height: 200 });
  expectColour((await fetchVariant(media, "display")).colour, BLUE);
});
