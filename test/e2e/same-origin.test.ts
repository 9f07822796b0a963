/**
 * With SHOAL_PUBLIC_URL unset, a person may open Shoal at whatever address reaches it (127.0.0.1, another
 * address of the machine, localhost): a page served from the address the request went to may change things.
 */
import path from "node:path";
import type { Browser, Page } from "playwright-core";
import { ensureWebBuild, launchChromium, signUpInBrowser } from "../support/browser";
import { startNode, stopAllNodes } from "../support/nodes";
import type { RunningNode } from "../support/nodes";

jest.setTimeout(90_000);

const IMAGE = path.resolve(__dirname, "../fixtures/exif_jpeg/orientation_6.jpg");

let node: RunningNode;
let browser: Browser;

beforeAll(async () => {
  ensureWebBuild();
  node = await startNode({ RATE_REGISTRATIONS_PER_IP_PER_HOUR: "100" });
  browser = await launchChromium();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await stopAllNodes();
});

async function signUpAndUpload(page: Page, baseUrl: string): Promise<void> {
  await signUpInBrowser(page, baseUrl, "origin");
  await page.locator("#file-picker").setInputFiles(IMAGE);
  const row = page.locator("li.upload-row").filter({ hasText: "orientation_6.jpg" });
  await row.and(page.locator(".upload-row--ready, .upload-row--failed")).waitFor({ timeout: 60_000 });
  expect(await row.getAttribute("class")).toMatch(/upload-row--ready/);
}

test.each([
  ["127.0.0.1", () => `http://127.0.0.1:${node.port ?? 0}`],
  ["another address of the machine (as a phone on the LAN would)", () => `http://127.0.0.2:${node.port ?? 0}`],
  ["localhost", () => `http://localhost:${node.port ?? 0}`],
])("a browser at %s signs up, uploads a photo and sees it become ready", async (_where, baseUrlOf) => {
  expect(node.settings.publicUrl).toBe("http://localhost:0");
  const context = await browser.newContext();
  try {
    await signUpAndUpload(await context.newPage(), baseUrlOf());
  } finally {
    await context.close();
  }
});

test("a page from a foreign origin is still refused, whatever Host it names", async () => {
  const answer = await fetch(`http://127.0.0.1:${node.port ?? 0}/api/auth/register`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Origin: "http://evil.example" },
    body: JSON.stringify({ username: "mallory", email: "mallory@example.test", password: "a sturdy horse battery 42" }),
  });
  expect(answer.status).toBe(403);
  expect(await answer.json()).toMatchObject({ error: { code: "origin_not_allowed" } });
});
