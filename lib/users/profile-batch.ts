import type { UserRow } from "./user-repository";
import { publicProfile } from "./user-views";

export type PublicProfile = ReturnType<typeof publicProfile>;

/** Where single profiles are cached: the entries `users.get` reads and writes, so one write cleans both. */
export interface ProfileCache {
  /** The cached profile, or undefined when there is none. */
  get(id: string): Promise<PublicProfile | undefined>;
  set(id: string, profile: PublicProfile): Promise<void>;
}

/**
 * Public profiles of many accounts at once (a page of media from many owners): each from the cache
 * when it is there, the rest from one query, then cached one by one. Ids without an account are left
 * out; repeated ids are looked up once.
 */
export async function publicProfilesOf(
  ids: readonly string[],
  cache: ProfileCache,
  load: (ids: readonly string[]) => Promise<UserRow[]>,
): Promise<PublicProfile[]> {
  const distinct = [...new Set(ids)];
  const cached = await Promise.all(distinct.map((id) => cache.get(id)));
  const found = new Map<string, PublicProfile>();
  const missing: string[] = [];
  distinct.forEach((id, index) => {
    const profile = cached[index];
    if (profile === undefined) missing.push(id);
    else found.set(id, profile);
  });
  if (missing.length > 0) {
    const loaded = (await load(missing)).map(publicProfile);
    await Promise.all(loaded.map((profile) => cache.set(profile.id, profile)));
    for (const profile of loaded) found.set(profile.id, profile);
  }
  return distinct.flatMap((id) => {
    const profile = found.get(id);
    return profile === undefined ? [] : [profile];
  });
}
