import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";

/**
 * The embedded node's signing secret when none is set: made once and kept in the data
 * directory (readable by its owner only), so that tokens survive a restart.
 */
export function loadOrCreateSecret(dataDir: string): string {
  const file = path.join(dataDir, "secret");
  try {
    return fs.readFileSync(file, "utf8").trim();
  } catch (error) {
    if ((error as { code?: string }).code !== "ENOENT") throw error;
  }
  fs.mkdirSync(dataDir, { recursive: true });
  const secret = randomBytes(32).toString("base64url");
  try {
    fs.writeFileSync(file, secret, { mode: 0o600, flag: "wx" });
    return secret;
  } catch (error) {
    // Another process made it first: use theirs.
    if ((error as { code?: string }).code === "EEXIST") return fs.readFileSync(file, "utf8").trim();
    throw error;
  }
}
