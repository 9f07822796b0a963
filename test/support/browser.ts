/**
 * Browser-test helpers: Debian's Chromium driven by playwright-core (no browser is ever downloaded),
 * the web build made fresh when the sources changed, and an axe-core check.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import AxeBuilder from "@axe-core/playwright";
import { chromium } from "playwright-core";
import type { Browser, Page } from "playwright-core";
import type { Env } from "../../config/settings";
import { freePort } from "../../scripts/services/ports";
import { startNode } from "./nodes";
import type { RunningNode } from "./nodes";

export const ROOT = path.resolve(__dirname, "../..");
export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const WEB_SOURCES = path.join(ROOT, "web");
const WEB_BUILD_INDEX = path.join(ROOT, "dist/web/index.html");

function newestMtime(target: string): number {
  const stat = fs.statSync(target);
  if (!stat.isDirectory()) return stat.mtimeMs;
  let newest = stat.mtimeMs;
  for (const entry of fs.readdirSync(target)) {
    if (entry === "node_modules" || entry === "dist") continue;
    newest = Math.max(newest, newestMtime(path.join(target, entry)));
  }
  return newest;
}

/** Runs `npm run build:web` when dist/web is missing or older than anything under web/ (or package-lock.json). */
export function ensureWebBuild(): void {
  const built = fs.existsSync(WEB_BUILD_INDEX) && fs.existsSync(path.join(ROOT, "dist/web/assets")) ? fs.statSync(WEB_BUILD_INDEX).mtimeMs : 0;
  const sources = Math.max(newestMtime(WEB_SOURCES), fs.statSync(path.join(ROOT, "package-lock.json")).mtimeMs);
  if (built > sources) return;
  execFileSync("npm", ["run", "--silent", "build:web"], { cwd: ROOT, stdio: ["ignore", "ignore", "inherit"], timeout: 120_000 });
}

export async function launchChromium(): Promise<Browser> {
  if (!fs.existsSync(CHROMIUM))
    throw new Error(`${CHROMIUM} is missing: install Debian's chromium (apt-get install -y --no-install-recommends chromium)`);
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
  });
}

export interface AxeFinding {
  readonly id: string;
  readonly impact: string | null | undefined;
  readonly help: string;
  readonly targets: string[];
}

/** The serious and critical axe-core violations on the page as it is now. */
export async function seriousViolations(page: Page): Promise<AxeFinding[]> {
  const results = await new AxeBuilder({ page }).analyze();
  return results.violations
    .filter((violation) => violation.impact === "serious" || violation.impact === "critical")
    .map((violation) => ({
      id: violation.id,
      impact: violation.impact,
      help: violation.help,
      targets: violation.nodes.map((node) => node.target.join(" ")),
    }));
}

/**
 * A node whose public URL is the address the browser uses: state-changing requests must come from that
 * origin (PORT=0 would leave the public URL at http://localhost:0 and every sign-up refused).
 */
export async function startWebNode(env: Env = {}): Promise<RunningNode> {
  const port = await freePort();
  return startNode({ PORT: String(port), SHOAL_PUBLIC_URL: `http://127.0.0.1:${port}`, ...env });
}

export const BROWSER_PASSWORD = "a sturdy horse battery 42";
let browserAccounts = 0;

/** Signs a new member up through the page's own form at `baseUrl`; resolves with the username once the upload page shows. */
export async function signUpInBrowser(page: Page, baseUrl: string, prefix = "tester"): Promise<string> {
  const username = `${prefix}${Date.now().toString(36)}${browserAccounts++}`;
  await page.goto(`${baseUrl}/#/signup`);
  await page.locator("#username").fill(username);
  await page.locator("#email").fill(`${username}@example.test`);
  await page.locator("#new-password").fill(BROWSER_PASSWORD);
  await page.getByRole("button", { name: "Create account" }).click();
  await page.waitForURL(/#\/upload$/, { waitUntil: "commit" });
  await page.getByRole("heading", { name: "Upload", level: 1 }).waitFor();
  return username;
}
