/**
 * The environment variables config/settings.ts reads, taken from its source (every `reader.*("NAME"`
 * call, with the per-database `MYSQL_${upper}_...` names spelt out), for checking the deployment
 * files: a variable nobody reads is a typo or a setting that no longer exists.
 */
import fs from "node:fs";
import path from "node:path";
import { DATABASE_NAMES } from "../../config/settings";

const SETTINGS_SOURCE = path.resolve(__dirname, "../../config/settings.ts");

export function settingNames(): ReadonlySet<string> {
  const source = fs.readFileSync(SETTINGS_SOURCE, "utf8");
  const names = new Set<string>();
  for (const match of source.matchAll(/reader\.(?:raw|optional|withDefault|required|list)\(\s*(["`])([A-Z0-9_]*(?:\$\{upper\})?[A-Z0-9_]*)\1/g)) {
    const name = match[2] ?? "";
    if (name.includes("${upper}")) for (const database of DATABASE_NAMES) names.add(name.replace("${upper}", database.toUpperCase()));
    else names.add(name);
  }
  return names;
}
