/**
 * `npm run licenses`: writes licenses/production.json, the licence of every package in the production
 * dependency tree (`npm ls --omit=dev --all`), as each package's package.json states it. A unit test
 * regenerates the list, so it fails when the checked-in list is out of date, and fails on any copyleft or
 * unstated licence that licenses/allowed.json does not name, with the same licence and a reason.
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";

export interface LicenseEntry {
  readonly name: string;
  readonly version: string;
  readonly license: string;
}

/** A package whose licence is copyleft or unstated, accepted on purpose. */
export interface AllowedLicense {
  readonly license: string;
  readonly why: string;
}

export const ROOT = path.resolve(__dirname, "..");
export const LIST_FILE = path.join(ROOT, "licenses", "production.json");
export const ALLOWED_FILE = path.join(ROOT, "licenses", "allowed.json");

/** Licences whose terms reach the code that uses or ships the package; each needs a reviewed allowance. */
const COPYLEFT = /\b(A?GPL|LGPL|GPLv?\d|SSPL|EUPL|MPL|EPL|CDDL|OSL|CPAL|RPL|CC-BY-SA|CC-BY-NC)/i;
export const UNSTATED = "UNSTATED";

interface TreeNode {
  readonly version?: string;
  readonly path?: string;
  readonly dependencies?: Readonly<Record<string, TreeNode>>;
}

/** The licence field in any of its historical forms: an SPDX expression, `{ type }`, or an array of those (`licenses`). */
function statedLicense(manifest: { license?: unknown; licenses?: unknown }): string {
  const one = (value: unknown): string | undefined =>
    typeof value === "string" ? value : typeof value === "object" && value !== null && "type" in value && typeof value.type === "string" ? value.type : undefined;
  const stated = manifest.license ?? manifest.licenses;
  if (Array.isArray(stated)) {
    const all = stated.map(one).filter((license): license is string => license !== undefined);
    if (all.length === 0) return UNSTATED;
    return all.length === 1 ? all[0]! : `(${all.join(" OR ")})`;
  }
  return one(stated) ?? UNSTATED;
}

/** The installed production tree, one entry per name and version, sorted; packages for other platforms, not installed, are left out. */
export function productionLicenses(root = ROOT): LicenseEntry[] {
  // npm ls also exits non-zero over problems elsewhere in node_modules (an extraneous package); its JSON still holds the tree.
  const listing = spawnSync("npm", ["ls", "--omit=dev", "--all", "--json", "--long"], { cwd: root, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  if (listing.error !== undefined || !listing.stdout.startsWith("{")) throw new Error(`npm ls failed: ${listing.error?.message ?? listing.stderr}`);
  const tree = JSON.parse(listing.stdout) as TreeNode;
  const entries = new Map<string, LicenseEntry>();
  const visit = (dependencies: TreeNode["dependencies"]) => {
    for (const [name, node] of Object.entries(dependencies ?? {})) {
      if (node.path === undefined || node.version === undefined) continue;
      const id = `${name}@${node.version}`;
      if (entries.has(id)) continue;
      const manifest = JSON.parse(fs.readFileSync(path.join(node.path, "package.json"), "utf8")) as { license?: unknown; licenses?: unknown };
      entries.set(id, { name, version: node.version, license: statedLicense(manifest) });
      visit(node.dependencies);
    }
  };
  visit(tree.dependencies);
  const order = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  return [...entries.values()].sort((a, b) => order(a.name, b.name) || order(a.version, b.version));
}

/** Entries whose licence is copyleft or unstated and not allowed, for that very licence, in `allowed`. */
export function unreviewedLicenses(entries: readonly LicenseEntry[], allowed: Readonly<Record<string, AllowedLicense>>): LicenseEntry[] {
  return entries.filter((entry) => (COPYLEFT.test(entry.license) || entry.license === UNSTATED) && allowed[entry.name]?.license !== entry.license);
}

export function formatList(entries: readonly LicenseEntry[]): string {
  return `${JSON.stringify(entries, null, 2)}\n`;
}

if (require.main === module) {
  const entries = productionLicenses();
  fs.writeFileSync(LIST_FILE, formatList(entries));
  const allowed = JSON.parse(fs.readFileSync(ALLOWED_FILE, "utf8")) as Record<string, AllowedLicense>;
  const unreviewed = unreviewedLicenses(entries, allowed);
  console.log(`${path.relative(process.cwd(), LIST_FILE)}: ${entries.length} production packages`);
  for (const entry of unreviewed) console.error(`not allowed: ${entry.name}@${entry.version} (${entry.license}); see licenses/allowed.json`);
  process.exitCode = unreviewed.length > 0 ? 1 : 0;
}
