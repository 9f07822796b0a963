import { parseAlias } from "./openapi";
import type { ApiRoute } from "./openapi";

/** The routes of an alias table (`"GET media/:id": "media.get"`), each with its action's params and description as the broker knows them. */
export function routesOfAliases(
  aliases: Readonly<Record<string, string>>,
  actionOf: (name: string) => { params?: unknown; description?: unknown } | undefined,
): ApiRoute[] {
  return Object.entries(aliases).map(([alias, action]) => {
    const schema = actionOf(action);
    return {
      ...parseAlias(alias),
      action,
      params: schema?.params as ApiRoute["params"],
      description: typeof schema?.description === "string" ? schema.description : undefined,
    };
  });
}
