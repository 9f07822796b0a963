/**
 * The statistics pages in Chromium against a real embedded node: first a new site with no figures, then
 * a site with a year of snapshots. Screenshots of every page go to a temporary directory; with
 * SHOAL_UPDATE_SCREENSHOTS=1 they replace docs/screenshots/ (the README shows them).
 */
import fs from "node:fs";
import path from "node:path";
import { execFile, execFileSync } from "node:child_process";
import os from "node:os";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { createDatabase } from "../../lib/db/open-database";
import type { SiteDatabase } from "../../lib/db/schemas/site";
import { BROWSER_PASSWORD, ROOT, ensureWebBuild, launchChromium, seriousViolations, signUpInBrowser, startWebNode } from "../support/browser";
import { eventually, stopNode } from "../support/nodes";
import type { RunningNode } from "../support/nodes";
import { UPLOADER_NAMES, seedYearOfSnapshots } from "../support/stats-year";
import { csvRecords, expectCsvMatchesSeries, expectCsvMatchesSummary, expectSummaryCsvMatches, summarySections } from "./stats-csv";
import type { SeriesJson, SummaryJson } from "./stats-csv";

jest.setTimeout(240_000);

const SCREENSHOTS = process.env.SHOAL_UPDATE_SCREENSHOTS === "1"
  ? path.join(ROOT, "docs/screenshots")
  : fs.mkdtempSync(path.join(os.tmpdir(), "shoal-screenshots-"));
const IMAGE = path.join(ROOT, "test/fixtures/exif_jpeg/orientation_6.jpg");
const CHART_TITLES_BY_WEEK = [
  "Members", "New members per week", "Active members", "Uploads per week", "Storage used", "Views per week",
  "Failed uploads per week", "Typical processing time", "Slow processing time", "Uploads waiting", "Answered from memory",
  "Database copy delay",
];
/** No snapshot of its own: the figures are exactly the ones a test writes (or none). */
const QUIET_NODE = { STATS_SNAPSHOTS: "false", STATS_VIEW_FLUSH_SECONDS: "1" };
const quietLogger = { info: () => undefined, warn: () => undefined };

let browser: Browser;
const contexts: BrowserContext[] = [];

async function newPage(): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  contexts.push(context);
  const page = await context.newPage();
  page.setDefaultTimeout(30_000);
  return page;
}

let adminCount = 0;

/** An administrator made by the operator command's action, signed in through the page's own form. */
async function adminPage(node: RunningNode): Promise<Page> {
  const username = `statsadmin${process.pid}x${adminCount++}`;
  await node.broker.call("users.create", { username, email: `${username}@example.test`, password: BROWSER_PASSWORD, role: "admin" });
  const page = await newPage();
  await page.goto(`${node.baseUrl}/#/signin`);
  await page.locator("#login").fill(username);
  await page.locator("#password").fill(BROWSER_PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("link", { name: "Statistics" }).waitFor();
  return page;
}

async function expectAccessible(page: Page, name: string): Promise<void> {
  const found = await seriousViolations(page);
  expect({ page: name, violations: found }).toEqual({ page: name, violations: [] });
}

/** Every chart and table has answered (no "Loading…" left). */
async function settled(page: Page): Promise<void> {
  await page.locator(".chart-card").first().waitFor();
  await page.waitForFunction(() => (globalThis as unknown as { document: { querySelectorAll(s: string): { length: number } } })
    .document.querySelectorAll(".loading").length === 0);
}

async function shoot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`) });
}

function fetchText(page: Page, href: string): Promise<{ status: number; type: string | null; text: string }> {
  return page.evaluate(async (url: string) => {
    const response = await fetch(url, { credentials: "same-origin" });
    return { status: response.status, type: response.headers.get("content-type"), text: await response.text() };
  }, href);
}

/**
 * The PDF's page count, text and image widths per page, read by pdf-parse in a child Node process
 * (its PDF.js worker loads through a dynamic import, which Jest's module sandbox refuses).
 */
function readPdf(pdf: Buffer): { pages: number; text: string; imageWidths: number[][] } {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "shoal-report-")), "report.pdf");
  fs.writeFileSync(file, pdf);
  const script = `
    const { PDFParse } = require("pdf-parse");
    (async () => {
      const parser = new PDFParse({ data: require("node:fs").readFileSync(process.argv[1]) });
      const text = await parser.getText();
      const images = await parser.getImage({ imageBuffer: false, imageDataUrl: false });
      await parser.destroy();
      process.stdout.write(JSON.stringify({ pages: text.total, text: text.text, imageWidths: images.pages.map((page) => page.images.map((image) => image.width)) }));
    })().catch((error) => { console.error(error); process.exit(1); });`;
  try {
    return JSON.parse(execFileSync(process.execPath, ["-e", script, file], { cwd: ROOT, encoding: "utf8", timeout: 60_000 })) as ReturnType<typeof readPdf>;
  } finally {
    fs.rmSync(path.dirname(file), { recursive: true, force: true });
  }
}

beforeAll(async () => {
  ensureWebBuild();
  fs.mkdirSync(SCREENSHOTS, { recursive: true });
  browser = await launchChromium();
}, 120_000);

afterAll(async () => {
  await Promise.allSettled(contexts.map((context) => context.close()));
  await browser?.close();
});

describe("a new site with no figures", () => {
  let node: RunningNode;
  let page: Page;

  beforeAll(async () => {
    node = await startWebNode(QUIET_NODE);
    page = await adminPage(node);
  }, 120_000);

  afterAll(async () => {
    if (node) await stopNode(node);
  });

  test("the dashboard says what will appear, chart by chart", async () => {
    await page.goto(`${node.baseUrl}/admin/stats?range=30d`);
    await settled(page);
    await page.getByRole("heading", { name: "No figures yet" }).waitFor();
    const cards = page.locator(".chart-card");
    expect(await cards.count()).toBe(CHART_TITLES_BY_WEEK.length);
    expect(await page.locator(".chart-card canvas").count()).toBe(0);
    expect(await page.locator(".chart-card .empty").count()).toBe(CHART_TITLES_BY_WEEK.length);
    await expect(page.locator('[data-chart="new-members"] .empty').textContent()).resolves.toBe(
      "New sign-ups will appear here once people create accounts.",
    );
    await expect(page.locator("#top-items-title + p + .empty").textContent()).resolves.toContain("most viewed items will be listed here");
    await shoot(page, "stats-dashboard-empty");
    await expectAccessible(page, "dashboard (empty)");
  });

  test("the printable report and My stats are empty too, in plain words", async () => {
    await page.goto(`${node.baseUrl}/admin/report?range=7d`);
    await settled(page);
    await page.getByText("There are no figures for this period yet.").waitFor();
    await shoot(page, "stats-report-empty");
    await expectAccessible(page, "report (empty)");

    await page.goto(`${node.baseUrl}/#/stats`);
    await page.getByRole("heading", { name: "Storage" }).waitFor();
    await page.getByText("Your uploads will appear here, day by day").waitFor();
    await page.getByText("Once other people open your items").waitFor();
    await expect(page.locator('label[for="my-storage-meter"]').textContent()).resolves.toMatch(/^0 B used of /);
    await shoot(page, "my-stats-empty");
    await expectAccessible(page, "my stats (empty)");
  });
});

describe("a site with a year of snapshots", () => {
  let node: RunningNode;
  let page: Page;

  beforeAll(async () => {
    node = await startWebNode(QUIET_NODE);
    // The top uploaders are members of the site, named as such.
    const uploaderIds: string[] = [];
    for (const username of UPLOADER_NAMES) {
      const { user } = await node.broker.call<{ user: { id: string } }, Record<string, string>>("users.create", { username, email: `${username}@example.test`, password: BROWSER_PASSWORD });
      uploaderIds.push(user.id);
    }
    const site = createDatabase<SiteDatabase>("site", node.settings.databases.site, node.settings.replication, node.runtime.writeMarks, quietLogger);
    try {
      await seedYearOfSnapshots(site, uploaderIds);
    } finally {
      await site.close();
    }
    page = await adminPage(node);
  }, 180_000);

  afterAll(async () => {
    if (node) await stopNode(node);
  });

  test("the dashboard over 12 months: headline figures with their change, a chart per week for every metric, the top lists", async () => {
    await page.goto(`${node.baseUrl}/#/admin/stats?range=12m`);
    await settled(page);
    const summary = JSON.parse((await fetchText(page, "/api/admin/stats/summary?range=12m")).text) as SummaryJson;
    expect(summary.range.bucket).toBe("7d");
    for (const title of CHART_TITLES_BY_WEEK) await page.getByRole("heading", { name: title, exact: true }).waitFor();
    expect(await page.locator(".chart-card canvas").count()).toBeGreaterThanOrEqual(CHART_TITLES_BY_WEEK.length);
    expect(await page.locator(".chart-card .empty").count()).toBe(0);
    expect(await page.getByRole("heading", { name: "No figures yet" }).count()).toBe(0);

    const tiles = page.locator(".kpi");
    expect(await tiles.count()).toBe(summary.kpis.length);
    const members = summary.kpis.find((kpi) => kpi.metric === "users_total");
    expect(members?.value).toBeGreaterThan(0);
    await expect(page.locator('.kpi[data-metric="users_total"] .kpi-value').textContent()).resolves.toBe(members?.value?.toLocaleString("en"));
    const withChange = summary.kpis.find((kpi) => kpi.change !== null);
    expect(withChange).toBeDefined();
    await expect(page.locator(`.kpi[data-metric="${withChange?.metric}"] .kpi-change`).textContent()).resolves.toMatch(/^[+−]\d+ % on the 12 months before|^no change/);

    expect(await page.locator("#top-uploaders-title ~ .table-scroll tbody tr").count()).toBe(summary.topUploaders.length);
    await expect(page.locator("#top-uploaders-title ~ .table-scroll tbody tr th, #top-uploaders-title ~ .table-scroll tbody tr td:first-child").allTextContents())
      .resolves.toEqual(expect.arrayContaining(UPLOADER_NAMES));
    expect(await page.locator("#top-items-title ~ .table-scroll tbody tr").count()).toBe(summary.topItems.length);
    expect(await page.locator("#failures-by-reason-title ~ .table-scroll tbody tr").count()).toBe(summary.failures.length);
    await page.getByRole("cell", { name: "corrupt", exact: true }).waitFor();
    await shoot(page, "stats-dashboard-year");

    // The numbers behind every chart, opened, are part of the page that axe checks.
    for (const details of await page.locator("details.chart-numbers").all()) await details.locator("summary").click();
    await expectAccessible(page, "dashboard (a year)");
  });

  test("the range picker changes the period and the bucket: 7 days by 12 hours, then chosen dates", async () => {
    await page.goto(`${node.baseUrl}/#/admin/stats?range=12m`);
    await settled(page);
    await page.getByRole("radio", { name: "Last 7 days" }).check();
    await page.waitForURL(/range=7d$/);
    await page.getByRole("heading", { name: "New members per 12 hours" }).waitFor();

    await page.getByRole("radio", { name: "Choose dates" }).check();
    const from = new Date(Date.now() - 60 * 86_400_000).toISOString().slice(0, 10);
    const to = new Date(Date.now() - 31 * 86_400_000).toISOString().slice(0, 10);
    await page.getByLabel("First day", { exact: true }).fill(from);
    await page.getByLabel("Last day", { exact: true }).fill(to);
    await page.getByRole("button", { name: "Show" }).click();
    await page.waitForURL(/from=.*&to=/);
    await page.getByRole("heading", { name: "New members per day" }).waitFor();
    await settled(page);
    const table = page.locator('[data-chart="new-members"] table tbody tr');
    expect(await table.count()).toBe(30);
  });

  test("every CSV download holds the same numbers as the API", async () => {
    await page.goto(`${node.baseUrl}/#/admin/stats?range=12m`);
    await settled(page);
    const seriesLinks = await page.locator("a[data-metric]").evaluateAll((links) => links.map((link) => link.getAttribute("href") ?? ""));
    expect(seriesLinks.length).toBeGreaterThanOrEqual(20);
    for (const href of seriesLinks) {
      const csv = await fetchText(page, href);
      expect({ href, status: csv.status, type: csv.type }).toEqual({ href, status: 200, type: expect.stringContaining("text/csv") });
      const json = JSON.parse((await fetchText(page, href.replace("&format=csv", ""))).text) as SeriesJson;
      expectCsvMatchesSeries(href, csvRecords(csv.text), json);
    }

    const summary = JSON.parse((await fetchText(page, "/api/admin/stats/summary?range=12m")).text) as SummaryJson;
    const tables: Record<string, string[][]> = {};
    for (const id of ["top-uploaders", "top-items", "failures-by-reason"]) {
      const [download] = await Promise.all([page.waitForEvent("download"), page.locator(`a[data-csv="${id}"]`).click()]);
      expect(download.suggestedFilename()).toBe(`${id}.csv`);
      tables[id] = csvRecords(fs.readFileSync(await download.path(), "utf8"));
    }
    expectCsvMatchesSummary(tables, summary);

    const summaryCsv = await fetchText(page, (await page.locator('a[data-csv="summary"]').getAttribute("href")) ?? "");
    expect({ status: summaryCsv.status, type: summaryCsv.type }).toEqual({ status: 200, type: expect.stringContaining("text/csv") });
    expect(summary.topUploaders.length).toBeGreaterThan(0);
    expect(summary.failures.length).toBeGreaterThan(0);
    expectSummaryCsvMatches(summarySections(csvRecords(summaryCsv.text)), tables, summary);
  });

  test("the printed report puts the charts on pages, with their titles", async () => {
    await page.goto(`${node.baseUrl}/admin/report?range=12m`);
    await settled(page);
    await page.waitForFunction((count: number) =>
      (globalThis as unknown as { document: { querySelectorAll(s: string): { length: number } } }).document.querySelectorAll(".chart-card canvas").length >= count,
    CHART_TITLES_BY_WEEK.length);
    await shoot(page, "stats-report-year");
    await expectAccessible(page, "report (a year)");

    await page.emulateMedia({ media: "print" });
    const pdf = await page.pdf({ format: "A4", printBackground: true });
    await page.emulateMedia({ media: "screen" });
    const read = readPdf(pdf);
    expect(read.pages).toBeGreaterThan(2);
    const flat = read.text.replace(/\s+/g, " ");
    for (const title of CHART_TITLES_BY_WEEK) expect(flat).toContain(title);
    expect(flat).not.toContain("Download");
    expect(flat).not.toContain("Print or save as PDF");
    // The charts are drawings on the pages after the first: one image 640 CSS pixels wide for each.
    const chartPages = read.imageWidths.map((widths) => widths.filter((width) => width >= 640).length);
    expect(chartPages[0]).toBe(0);
    expect(chartPages.reduce((sum, count) => sum + count, 0)).toBeGreaterThanOrEqual(CHART_TITLES_BY_WEEK.length);
    expect(chartPages.filter((count) => count > 0).length).toBeGreaterThan(1);
  });

  test("npm run report --format pdf prints the report page with Chromium: a PDF of several pages holding the report's titles", async () => {
    const username = `reportadmin${process.pid}`;
    await node.broker.call("users.create", { username, email: `${username}@example.test`, password: BROWSER_PASSWORD, role: "admin" });
    const login = await fetch(`${node.baseUrl}/api/auth/login`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ login: username, password: BROWSER_PASSWORD }) });
    const { token } = (await login.json()) as { token: string };
    const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "shoal-report-out-")), "report.pdf");
    // Asynchronously: the node answering the script runs in this process.
    const run = await new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
      const args = ["--import", "tsx", "scripts/report.ts", "--range", "12m", "--format", "pdf", "--out", out, "--url", node.baseUrl, "--token", token];
      const child = execFile(process.execPath, args, { cwd: ROOT, encoding: "utf8", timeout: 120_000 }, (_error, stdout, stderr) => resolve({ status: child.exitCode, stdout, stderr }));
    });
    expect({ status: run.status, stderr: run.stderr }).toEqual({ status: 0, stderr: "" });
    expect(run.stdout).toContain(`${out}: PDF report of the last 12m`);
    const pdf = fs.readFileSync(out);
    expect(pdf.subarray(0, 5).toString("latin1")).toBe("%PDF-");
    const read = readPdf(pdf);
    expect(read.pages).toBeGreaterThan(1);
    const flat = read.text.replace(/\s+/g, " ");
    for (const title of CHART_TITLES_BY_WEEK) expect(flat).toContain(title);
    for (const name of UPLOADER_NAMES) expect(flat).toContain(name);
    expect(fs.existsSync(`${out}.part`)).toBe(false);
  });

  test("My stats: storage against the quota, uploads over time and the views of each item, counted when someone else opens it", async () => {
    const member = await newPage();
    await signUpInBrowser(member, node.baseUrl, "statsmember");
    await member.locator("#file-picker").setInputFiles([IMAGE]);
    const row = member.locator("li.upload-row.upload-row--ready");
    await row.waitFor({ timeout: 45_000 });
    const href = await row.locator('a[href^="#/media/"]').getAttribute("href");
    const mediaId = (href ?? "").replace("#/media/", "");
    expect(mediaId).not.toBe("");

    await page.goto(`${node.baseUrl}/#/media/${mediaId}`);
    await page.locator(".player--image img").first().waitFor();

    await member.goto(`${node.baseUrl}/#/stats`);
    const views = member.locator("#my-items-title ~ .table-scroll tbody tr").first().locator("td").nth(1);
    await eventually(async () => {
      await member.reload();
      await member.getByRole("heading", { name: "Views of my items" }).waitFor();
      return (await views.count()) > 0 ? await views.textContent() : null;
    }, (text) => text === "1", 20_000);
    const mine = JSON.parse((await fetchText(member, "/api/me/stats")).text) as { usedBytes: number; quotaBytes: number; items: { views: number }[] };
    expect(mine.usedBytes).toBeGreaterThan(0);
    expect(mine.items.map((item) => item.views)).toEqual([1]);
    await expect(member.locator('label[for="my-storage-meter"]').textContent()).resolves.toMatch(/ used of /);
    expect(await member.locator('[data-chart="my-uploads"] canvas').count()).toBeGreaterThan(0);
    await shoot(member, "my-stats");
    await expectAccessible(member, "my stats");
  });
});
