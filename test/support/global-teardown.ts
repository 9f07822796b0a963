import { removeDirectory } from "../../scripts/services/processes";
import { TEMPLATE_ROOT_VARIABLE } from "./global-setup";

export default async function globalTeardown(): Promise<void> {
  const root = process.env[TEMPLATE_ROOT_VARIABLE];
  if (root === undefined) return;
  await removeDirectory(root);
  delete process.env[TEMPLATE_ROOT_VARIABLE];
  delete process.env.SHOAL_TEST_MARIADB_TEMPLATE;
}
