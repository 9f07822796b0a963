import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { ALL_BINARIES, requireBinaries } from "../../scripts/services/binaries";
import { prepareMariaDbTemplate } from "../../scripts/services/mariadb";
import { deleteDirectoryWhenProcessEnds } from "../../scripts/services/processes";

/** Set when this setup made the template, so that the teardown deletes only what the setup made. */
export const TEMPLATE_ROOT_VARIABLE = "SHOAL_TEST_MARIADB_TEMPLATE_ROOT";

/**
 * Fails the run with one line when a server binary is missing, and makes the one MariaDB datadir
 * template that every replication set of this run copies. Workers inherit the environment variable.
 */
export default async function globalSetup(): Promise<void> {
  requireBinaries(ALL_BINARIES);
  const given = process.env.SHOAL_TEST_MARIADB_TEMPLATE;
  if (given !== undefined && given !== "" && fs.existsSync(path.join(given, "mysql"))) return;
  const root = await fs.promises.mkdtemp(path.join(os.tmpdir(), "shoal-mariadb-template-"));
  deleteDirectoryWhenProcessEnds(root);
  process.env[TEMPLATE_ROOT_VARIABLE] = root;
  process.env.SHOAL_TEST_MARIADB_TEMPLATE = await prepareMariaDbTemplate(root);
}
