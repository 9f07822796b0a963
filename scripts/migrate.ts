import "dotenv/config";
import { DATABASE_NAMES, parseSettings, SettingsError } from "../config/settings";
import { createDatabase } from "../lib/db/open-database";
import { MemoryExpiringStore } from "../lib/expiring-store";
import { MIGRATIONS } from "../migrations";

/** Brings all three databases up to date, the same way a starting node does. */
async function main(): Promise<void> {
  const settings = parseSettings(process.env);
  const logger = { info: (message: string) => console.log(message), warn: (message: string) => console.warn(message) };
  for (const name of DATABASE_NAMES) {
    const db = createDatabase(name, settings.databases[name], settings.replication, new MemoryExpiringStore(), logger);
    try {
      await db.connect();
      await db.migrate(MIGRATIONS[name]);
      console.log(`${name}: up to date`);
    } finally {
      await db.close();
    }
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(error instanceof SettingsError ? 2 : 1);
});
