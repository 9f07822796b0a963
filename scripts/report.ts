/**
 * The site's report for sending on:
 *
 *   npm run report -- --range 7d --format pdf|csv --out FILE [--url http://localhost:3000] [--token TOKEN]
 *
 * Reads a running site as an admin (`--token` or SHOAL_ADMIN_TOKEN: the bearer token of an admin's
 * session). CSV is the summary the API gives (`GET /api/admin/stats/summary?format=csv`). PDF is the
 * web app's printable report (`/#/admin/report?range=`) printed by headless Chromium (CHROMIUM_PATH,
 * default /usr/bin/chromium).
 */
import fs from "node:fs";
import { parseArgs } from "node:util";

const RANGES = ["24h", "7d", "30d", "12m"];
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

function fail(message: string): never {
  process.stderr.write(`report: ${message}\n`);
  process.exit(2);
}

async function csvReport(url: string, range: string, token: string): Promise<Buffer> {
  const response = await fetch(`${url}/api/admin/stats/summary?range=${range}&format=csv`, { headers: { Authorization: `Bearer ${token}` } });
  if (response.status === 401 || response.status === 403) fail(`the site refused the token (${response.status}): it must belong to an admin's session`);
  if (!response.ok) fail(`the site answered ${response.status}: ${(await response.text()).slice(0, 500)}`);
  return Buffer.from(await response.arrayBuffer());
}

async function pdfReport(url: string, range: string, token: string): Promise<Buffer> {
  if (!fs.existsSync(CHROMIUM)) {
    fail(`PDF needs Chromium, which is not installed at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH); --format csv works without it`);
  }
  // Loaded only for PDF: CSV reports need no browser library.
  const { chromium } = await import("playwright-core");
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true });
  try {
    // The report page asks the API with the admin's token, as the browser of a signed-in admin would.
    const context = await browser.newContext({ extraHTTPHeaders: { Authorization: `Bearer ${token}` } });
    const page = await context.newPage();
    await page.goto(`${url}/#/admin/report?range=${range}`, { waitUntil: "networkidle" });
    await page.emulateMedia({ media: "print" });
    return await page.pdf({ format: "A4", printBackground: true, margin: { top: "15mm", bottom: "15mm", left: "12mm", right: "12mm" } });
  } finally {
    await browser.close();
  }
}

/**
 * Session tokens are base64url and one in 64 starts with "-", which parseArgs would refuse as the value of
 * `--token <value>`: it is passed on as `--token=<value>`, whatever its first character.
 */
function withTokenJoined(args: readonly string[]): string[] {
  const joined: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const value = args[i + 1];
    if (args[i] === "--token" && value !== undefined) {
      joined.push(`--token=${value}`);
      i++;
    } else {
      joined.push(args[i] as string);
    }
  }
  return joined;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: withTokenJoined(process.argv.slice(2)),
    options: {
      range: { type: "string", default: "7d" },
      format: { type: "string", default: "pdf" },
      out: { type: "string" },
      url: { type: "string", default: process.env.SHOAL_PUBLIC_URL ?? "http://localhost:3000" },
      token: { type: "string", default: process.env.SHOAL_ADMIN_TOKEN },
    },
  });
  const { range, format, out, token } = values;
  if (!RANGES.includes(range)) fail(`--range must be one of ${RANGES.join(", ")}`);
  if (format !== "pdf" && format !== "csv") fail("--format must be pdf or csv");
  if (!out) fail("--out FILE is required");
  if (!token) fail("an admin's session token is required: --token or SHOAL_ADMIN_TOKEN");
  const url = values.url.replace(/\/+$/, "");
  const bytes = format === "csv" ? await csvReport(url, range, token) : await pdfReport(url, range, token);
  // Written whole, once complete: a failed run leaves no half file behind.
  fs.writeFileSync(`${out}.part`, bytes);
  fs.renameSync(`${out}.part`, out);
  process.stdout.write(`${out}: ${format.toUpperCase()} report of the last ${range}, ${bytes.length} bytes\n`);
}

main().catch((error: Error) => fail(error.message));
