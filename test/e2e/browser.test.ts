/**
 * The web app in a real browser (Debian's Chromium through playwright-core) against a real embedded
 * Shoal node: sign up, upload, live progress, playback, refusals, sharing, resuming, accessibility.
 * Screenshots land in test/e2e/screenshots/ (git-ignored) for a reviewer to look at.
 */
import fs from "node:fs";
import path from "node:path";
import type { Browser, BrowserContext, Locator, Page } from "playwright-core";
import { ensureWebBuild, launchChromium, seriousViolations, signUpInBrowser, startWebNode } from "../support/browser";
import { stopNode } from "../support/nodes";
import type { RunningNode } from "../support/nodes";

jest.setTimeout(60_000);

const FIXTURES = path.resolve(__dirname, "../fixtures");
const IMAGE = path.join(FIXTURES, "exif_jpeg/orientation_6.jpg");
const VIDEO = path.join(FIXTURES, "video/mp4_h264_aac51_1080p60.mp4");
const AUDIO = path.join(FIXTURES, "audio/mp3_id3v24_cover.mp3");
const SCREENSHOTS = path.join(__dirname, "screenshots");

let node: RunningNode;
let smallNode: RunningNode | undefined;
let browser: Browser;
const contexts: BrowserContext[] = [];
let owner: Page;
const ids: { image?: string; video?: string; audio?: string } = {};

// What the page-side functions use of the DOM (this project type-checks without the DOM library).
interface ImageElement { complete: boolean; naturalWidth: number; naturalHeight: number; addEventListener(type: string, listener: () => void): void }
interface MediaElement {
  muted: boolean;
  readyState: number;
  currentTime: number;
  duration: number;
  play(): Promise<void>;
  pause(): void;
  addEventListener(type: string, listener: () => void, options?: { once: boolean }): void;
}
interface ProgressElement { value: number; max: number }

interface CanvasElement {
  width: number;
  height: number;
  getContext(kind: "2d"): { getImageData(x: number, y: number, width: number, height: number): { data: ArrayLike<number> } } | null;
}
interface PageGlobals { document: { querySelector(selector: string): unknown } }

function waveformDrawn(): boolean {
  const element = (globalThis as unknown as PageGlobals).document.querySelector("canvas.waveform") as CanvasElement | null;
  const context = element?.getContext("2d");
  if (!element || !context || element.width === 0 || element.height === 0) return false;
  const pixels = context.getImageData(0, 0, element.width, element.height).data;
  for (let index = 3; index < pixels.length; index += 4) if (pixels[index] !== 0) return true;
  return false;
}

function uploadUnderway(): boolean {
  const bar = (globalThis as unknown as PageGlobals).document.querySelector("li.upload-row progress") as ProgressElement | null;
  return !!bar && bar.value > 0 && bar.value < bar.max * 0.8;
}

async function newPage(): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  contexts.push(context);
  const page = await context.newPage();
  page.setDefaultTimeout(20_000);
  return page;
}

function signUp(page: Page, baseUrl: string): Promise<string> {
  return signUpInBrowser(page, baseUrl);
}

function row(page: Page, filename: string): Locator {
  return page.locator("li.upload-row").filter({ hasText: filename });
}

async function mediaIdOf(page: Page, filename: string): Promise<string> {
  const href = await row(page, filename).locator(`a[href^="#/media/"]`).getAttribute("href");
  if (!href) throw new Error(`no link for ${filename}`);
  return href.replace("#/media/", "");
}

async function expectAccessible(page: Page, name: string): Promise<void> {
  const found = await seriousViolations(page);
  expect({ page: name, violations: found }).toEqual({ page: name, violations: [] });
}

beforeAll(async () => {
  ensureWebBuild();
  fs.mkdirSync(SCREENSHOTS, { recursive: true });
  node = await startWebNode({ RATE_REGISTRATIONS_PER_IP_PER_HOUR: "100" });
  browser = await launchChromium();
  owner = await newPage();
}, 120_000);

afterAll(async () => {
  await Promise.allSettled(contexts.map((context) => context.close()));
  await browser?.close();
  if (smallNode) await stopNode(smallNode);
  if (node) await stopNode(node);
});

test("the gateway serves the built web app", async () => {
  const response = await fetch(`${node.baseUrl}/`);
  expect(response.status).toBe(200);
  expect(await response.text()).toContain('<div id="app"');
});

test("sign up, upload an image, a video and an audio file, and watch each row reach ready live", async () => {
  await signUp(owner, node.baseUrl);
  await expectAccessible(owner, "upload (empty)");
  await owner.locator("#file-picker").setInputFiles([IMAGE, VIDEO, AUDIO]);
  await owner.locator("li.upload-row").nth(2).waitFor();
  await owner.screenshot({ path: path.join(SCREENSHOTS, "upload-in-progress.png"), fullPage: true });
  const urlBefore = owner.url();
  for (const file of [IMAGE, VIDEO, AUDIO])
    await row(owner, path.basename(file)).and(owner.locator(".upload-row--ready")).waitFor({ timeout: 45_000 });
  expect(owner.url()).toBe(urlBefore);
  await owner.screenshot({ path: path.join(SCREENSHOTS, "upload-done.png"), fullPage: true });
  await expectAccessible(owner, "upload (done)");

  // The EXIF orientation 6 photo is stored upright: its thumbnail is landscape.
  const thumb = row(owner, "orientation_6.jpg").locator(".upload-thumb img");
  await thumb.evaluate((img: ImageElement) => (img.complete ? undefined : new Promise<void>((resolve) => img.addEventListener("load", () => resolve()))));
  const size = await thumb.evaluate((img: ImageElement) => ({ width: img.naturalWidth, height: img.naturalHeight }));
  expect(size.width).toBeGreaterThan(size.height);

  ids.image = await mediaIdOf(owner, "orientation_6.jpg");
  ids.video = await mediaIdOf(owner, path.basename(VIDEO));
  ids.audio = await mediaIdOf(owner, path.basename(AUDIO));

  await owner.getByRole("link", { name: "My library" }).click();
  await owner.locator("li.grid-item").nth(2).waitFor();
  await owner.locator("li.grid-item img.thumb--loaded").nth(2).waitFor();
  await owner.screenshot({ path: path.join(SCREENSHOTS, "library.png"), fullPage: true });
  await expectAccessible(owner, "library");
});

test("the video plays and seeks, and the audio viewer draws a waveform", async () => {
  expect(ids.video).toBeDefined();
  await owner.goto(`${node.baseUrl}/#/media/${ids.video}`);
  const video = owner.locator("video");
  await video.waitFor();
  const played = await video.evaluate(async (element: MediaElement) => {
    element.muted = true;
    await element.play();
    const start = element.currentTime;
    const deadline = Date.now() + 10_000;
    while (element.currentTime <= start + 0.2 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
    return { readyState: element.readyState, start, now: element.currentTime, duration: element.duration };
  });
  expect(played.readyState).toBeGreaterThanOrEqual(2);
  expect(played.now).toBeGreaterThan(played.start);
  const seeked = await video.evaluate(async (element: MediaElement) => {
    element.pause();
    const target = Math.min(1.5, element.duration / 2);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("no seeked event")), 10_000);
      element.addEventListener("seeked", () => {
        clearTimeout(timer);
        resolve();
      }, { once: true });
      element.currentTime = target;
    });
    return { target, now: element.currentTime, readyState: element.readyState };
  });
  expect(Math.abs(seeked.now - seeked.target)).toBeLessThan(0.5);
  await owner.screenshot({ path: path.join(SCREENSHOTS, "viewer-video.png"), fullPage: true });
  await expectAccessible(owner, "viewer (video)");

  await owner.goto(`${node.baseUrl}/#/media/${ids.audio}`);
  const canvas = owner.locator("canvas.waveform");
  await canvas.waitFor();
  await owner.waitForFunction(waveformDrawn, undefined, { timeout: 10_000 });
  await owner.screenshot({ path: path.join(SCREENSHOTS, "viewer-audio.png"), fullPage: true });
  await expectAccessible(owner, "viewer (audio)");

  await owner.goto(`${node.baseUrl}/#/media/${ids.image}`);
  await owner.locator(".player--image .image-button img").waitFor();
  await owner.screenshot({ path: path.join(SCREENSHOTS, "viewer-image.png"), fullPage: true });
  await expectAccessible(owner, "viewer (image)");
});

test("an unsupported file and an oversized file show their reasons in the row", async () => {
  await owner.goto(`${node.baseUrl}/#/upload`);
  await owner.locator("#file-picker").setInputFiles({ name: "notes.txt", mimeType: "text/plain", buffer: Buffer.from("just some words\n".repeat(50)) });
  const unsupported = row(owner, "notes.txt").and(owner.locator(".upload-row--failed"));
  await unsupported.waitFor();
  expect((await unsupported.locator(".upload-status").innerText()).toLowerCase()).toMatch(/support|type|format/);

  smallNode = await startWebNode({ RATE_REGISTRATIONS_PER_IP_PER_HOUR: "100", UPLOAD_MAX_IMAGE_BYTES: "10000" });
  const page = await newPage();
  await signUp(page, smallNode.baseUrl);
  await page.locator("#file-picker").setInputFiles(IMAGE);
  const oversized = row(page, "orientation_6.jpg").and(page.locator(".upload-row--failed"));
  await oversized.waitFor();
  expect((await oversized.locator(".upload-status").innerText()).toLowerCase()).toMatch(/too large|too big|larger|limit/);
  await page.screenshot({ path: path.join(SCREENSHOTS, "upload-refused.png"), fullPage: true });
  await page.context().close();
  await stopNode(smallNode);
  smallNode = undefined;
});

test("a public item shows in the feed when signed out; a private item is not found for another user", async () => {
  await owner.goto(`${node.baseUrl}/#/media/${ids.image}`);
  await owner.getByRole("radio", { name: /Public/ }).check();
  await owner.getByRole("button", { name: "Save" }).click();
  await owner.getByText("Saved.").waitFor();
  await owner.getByRole("button", { name: "Copy link" }).waitFor();
  await owner.getByRole("button", { name: "Sign out" }).click();
  await owner.getByRole("link", { name: "Sign in" }).waitFor();
  await owner.goto(`${node.baseUrl}/#/`);
  await owner.getByRole("heading", { name: "Public feed" }).waitFor();
  const item = owner.locator(`li.grid-item a[href="#/media/${ids.image}"]`);
  await item.waitFor();
  expect(await owner.locator(`li.grid-item a[href="#/media/${ids.video}"]`).count()).toBe(0);
  await owner.screenshot({ path: path.join(SCREENSHOTS, "feed.png"), fullPage: true });
  await expectAccessible(owner, "public feed");
  await owner.goto(`${node.baseUrl}/#/signin`);
  await owner.getByRole("heading", { name: "Sign in" }).waitFor();
  await expectAccessible(owner, "sign in");

  const other = await newPage();
  await signUp(other, node.baseUrl);
  await other.goto(`${node.baseUrl}/#/media/${ids.video}`);
  await other.getByRole("heading", { name: "Not found" }).waitFor();
  await other.goto(`${node.baseUrl}/#/media/${ids.image}`);
  await other.getByRole("heading", { name: "orientation_6" }).waitFor();
  await other.goto(`${node.baseUrl}/#/account`);
  await other.getByRole("heading", { level: 1 }).waitFor();
  await expectAccessible(other, "account");
  await other.goto(`${node.baseUrl}/#/signup`);
  await expectAccessible(other, "sign up (signed in)");
});

test("an upload interrupted by going offline resumes and finishes", async () => {
  const page = await newPage();
  await signUp(page, node.baseUrl);
  // A slow uplink so that the drop lands in the middle of the upload.
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("Network.enable");
  await cdp.send("Network.emulateNetworkConditions", { offline: false, latency: 20, downloadThroughput: -1, uploadThroughput: 256 * 1024 });
  await page.locator("#file-picker").setInputFiles(VIDEO);
  const video = row(page, path.basename(VIDEO));
  const progress = video.locator("progress");
  await page.waitForFunction(uploadUnderway, undefined, { timeout: 15_000, polling: 50 });
  await page.context().setOffline(true);
  await video.and(page.locator(".upload-row--offline")).waitFor({ timeout: 15_000 });
  const stoppedAt = await progress.evaluate((bar: ProgressElement) => bar.value);
  await page.context().setOffline(false);
  await cdp.send("Network.emulateNetworkConditions", { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
  await video.and(page.locator(".upload-row--ready")).waitFor({ timeout: 45_000 });
  expect(stoppedAt).toBeGreaterThan(0);
  expect(stoppedAt).toBeLessThan(fs.statSync(VIDEO).size);
});
