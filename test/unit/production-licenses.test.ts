import fs from "node:fs";
import { ALLOWED_FILE, formatList, LIST_FILE, productionLicenses, unreviewedLicenses } from "../../scripts/licenses";
import type { AllowedLicense } from "../../scripts/licenses";

const allowed = JSON.parse(fs.readFileSync(ALLOWED_FILE, "utf8")) as Record<string, AllowedLicense>;

describe("the licences of the production dependencies", () => {
  const entries = productionLicenses();

  test("licenses/production.json is the installed production tree's list (else run npm run licenses)", () => {
    expect(fs.readFileSync(LIST_FILE, "utf8")).toBe(formatList(entries));
  });

  test("no copyleft or unstated licence is in the tree unless licenses/allowed.json allows it, with a reason", () => {
    expect(unreviewedLicenses(entries, allowed)).toEqual([]);
    for (const [name, allowance] of Object.entries(allowed)) expect([name, allowance.why.length > 20]).toEqual([name, true]);
  });

  test("every allowance is still needed: its package is in the tree with that licence", () => {
    const stale = Object.entries(allowed)
      .filter(([name, allowance]) => !entries.some((entry) => entry.name === name && entry.license === allowance.license))
      .map(([name]) => name);
    expect(stale).toEqual([]);
  });
});

describe("the copyleft check", () => {
  const entry = (name: string, license: string) => ({ name, version: "1.0.0", license });

  test("flags GPL, AGPL, LGPL, SSPL, EUPL and MPL packages, and one that states no licence", () => {
    const flagged = ["GPL-2.0-only", "GPLv3", "AGPL-3.0-or-later", "LGPL-2.1", "SSPL-1.0", "EUPL-1.2", "MPL-2.0", "(MIT OR GPL-3.0)", "UNSTATED"].map((license) =>
      entry("new-dependency", license),
    );
    expect(unreviewedLicenses(flagged, allowed)).toEqual(flagged);
  });

  test("lets permissive licences through, and an allowed package only with the licence it was allowed under", () => {
    const permissive = ["MIT", "ISC", "Apache-2.0", "BSD-3-Clause", "0BSD", "(MIT OR Apache-2.0)", "Unlicense"].map((license) => entry("lib", license));
    expect(unreviewedLicenses(permissive, allowed)).toEqual([]);
    expect(unreviewedLicenses([entry("@ffmpeg-installer/linux-x64", "GPLv3")], allowed)).toEqual([]);
    expect(unreviewedLicenses([entry("@ffmpeg-installer/linux-x64", "AGPL-3.0")], allowed)).toHaveLength(1);
  });
});
