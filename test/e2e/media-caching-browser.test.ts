/**
 * What a returning visitor's browser downloads again: the library page in real Chromium, loaded, then
 * reloaded. Thumbnails keep their signed URLs for a window and are sent as cacheable, so the reload takes
 * them from the browser's cache (or gets 304s) instead of downloading their bytes again.
 */
import path from "node:path";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { BROWSER_PASSWORD, ensureWebBuild, launchChromium, signUpInBrowser, startWebNode } from "../support/browser";
import { stopNode } from "../support/nodes";
import type { RunningNode } from "../support/nodes";

jest.setTimeout(90_000);

const FIXTURES = path.resolve(__dirname, "../fixtures");
const IMAGES = [
  path.join(FIXTURES, "exif_jpeg/orientation_1.jpg"),
  path.join(FIXTURES, "exif_jpeg/orientation_6.jpg"),
  path.join(FIXTURES, "image_formats/png_rgba_alpha.png"),
];

let node: RunningNode;
let browser: Browser;
let context: BrowserContext;
let page: Page;

/** Image responses of /files/ whose body came over the network (not a 304, not from the memory or disk cache). */
async function countImageBodies(page: Page): Promise<{ count: () => number; reset: () => void }> {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("Network.enable");
  const fromCache = new Set<string>();
  const downloaded = new Set<string>();
  cdp.on("Network.requestServedFromCache", (event: { requestId: string }) => {
    fromCache.add(event.requestId);
  });
  cdp.on(
    "Network.responseReceived",
    (event: { requestId: string; type: string; response: { url: string; status: number; fromDiskCache?: boolean; fromServiceWorker?: boolean } }) => {
      const { response } = event;
      if (event.type !== "Image" || !response.url.includes("/files/")) return;
      if (response.status === 304 || response.fromDiskCache || response.fromServiceWorker) return;
      downloaded.add(event.requestId);
    },
  );
  return {
    count: () => [...downloaded].filter((id) => !fromCache.has(id)).length,
    reset: () => downloaded.clear(),
  };
}

async function thumbnailsShown(page: Page, count: number): Promise<void> {
  await page.waitForFunction(
    (expected: number) => (globalThis as unknown as { document: { querySelectorAll(s: string): { length: number } } }).document.querySelectorAll("img.thumb--loaded").length >= expected,
    count,
  );
}

beforeAll(async () => {
  ensureWebBuild();
  node = await startWebNode({ RATE_REGISTRATIONS_PER_IP_PER_HOUR: "100" });
  browser = await launchChromium();
  context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  page = await context.newPage();
  page.setDefaultTimeout(30_000);
}, 120_000);

afterAll(async () => {
  await context?.close();
  await browser?.close();
  if (node) await stopNode(node);
});

test("reloading the library downloads no thumbnail again", async () => {
  const username = await signUpInBrowser(page, node.baseUrl, "cacher");
  await page.locator("#file-picker").setInputFiles(IMAGES);
  for (const file of IMAGES) {
    await page.locator("li.upload-row").filter({ hasText: path.basename(file) }).and(page.locator(".upload-row--ready")).waitFor({ timeout: 45_000 });
  }

  // Another browser, with an empty cache, signs in and opens the library.
  const visitor = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  try {
    const library = await visitor.newPage();
    library.setDefaultTimeout(30_000);
    const downloads = await countImageBodies(library);
    await library.goto(`${node.baseUrl}/#/signin`);
    await library.locator("#login").fill(username);
    await library.locator("#password").fill(BROWSER_PASSWORD);
    await library.getByRole("button", { name: "Sign in" }).click();
    await library.waitForURL(/#\/library$/, { waitUntil: "commit" });
    await thumbnailsShown(library, IMAGES.length);
    // The first visit does download them (else the reload's zero would prove nothing).
    expect(downloads.count()).toBe(IMAGES.length);

    downloads.reset();
    await library.reload();
    await thumbnailsShown(library, IMAGES.length);
    expect(downloads.count()).toBe(0);
  } finally {
    await visitor.close();
  }
});
