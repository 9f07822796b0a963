import { publicProfilesOf } from "../../lib/users/profile-batch";
import type { ProfileCache, PublicProfile } from "../../lib/users/profile-batch";
import type { UserRow } from "../../lib/users/user-repository";

const row = (id: string): UserRow => ({ id, username: `name-${id}`, created_at: 0 }) as unknown as UserRow;
const profile = (id: string): PublicProfile => ({ id, username: `name-${id}`, createdAt: new Date(0).toISOString() });

function memoryCache(entries: PublicProfile[] = []): ProfileCache & { stored: Map<string, PublicProfile> } {
  const stored = new Map(entries.map((entry) => [entry.id, entry]));
  return { stored, get: async (id) => stored.get(id), set: async (id, value) => void stored.set(id, value) };
}

describe("public profiles of many accounts", () => {
  test("takes what is cached, loads the rest in one query, and caches what it loaded", async () => {
    const cache = memoryCache([profile("a")]);
    const loads: string[][] = [];
    const found = await publicProfilesOf(["a", "b", "c", "b"], cache, async (ids) => {
      loads.push([...ids]);
      return ids.map(row);
    });
    expect(found.map((entry) => entry.username)).toEqual(["name-a", "name-b", "name-c"]);
    expect(loads).toEqual([["b", "c"]]);
    expect([...cache.stored.keys()].sort()).toEqual(["a", "b", "c"]);

    await publicProfilesOf(["a", "b", "c"], cache, async (ids) => {
      loads.push([...ids]);
      return [];
    });
    expect(loads).toHaveLength(1);
  });

  test("leaves out accounts that do not exist, and caches nothing for them", async () => {
    const cache = memoryCache();
    const found = await publicProfilesOf(["a", "gone"], cache, async () => [row("a")]);
    expect(found.map((entry) => entry.id)).toEqual(["a"]);
    expect(cache.stored.has("gone")).toBe(false);
  });
});
