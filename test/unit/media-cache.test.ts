import { Cachers, Utils } from "moleculer";
import {
  MAX_ITEM_PATTERNS,
  MEDIA_GET_CACHE_KEYS,
  MEDIA_LIST_CACHE_KEYS,
  listCacheKey,
  mediaReadTtlSeconds,
  stalePatterns,
} from "../../lib/media/media-cache";

const OWNER = "01JD3Z5W7Q9XK4B1N8M6P2R0ST";
const OTHER = "01JD3Z5W7Q9XK4B1N8M6P2R0SV";
const ID = "AbCdEfGhIjKlMnOpQrStU";
const OTHER_ID = "AbCdEfGhIjKlMnOpQrStV";
const CURSOR = "WzE3NjQwMDAwMDAwMDAsIkFiQ2RFZkdoSWpLbE1uT3BRclN0VSJd";

// Keys built by Moleculer itself, and matched with its own matcher, so the layout in
// media-cache.ts cannot drift from what the cacher really stores.
const cacher = new Cachers.Memory();
const getKey = (id: string, userId: string | undefined) =>
  cacher.getCacheKey("media.get", { id }, { user: userId ? { id: userId } : undefined }, [...MEDIA_GET_CACHE_KEYS]);
const matches = (key: string, patterns: readonly string[]) => patterns.some((pattern) => Utils.match(key, pattern));

describe("media cache keys and what a write cleans", () => {
  test("an item's change cleans every caller's view of it, and no other item's", () => {
    const patterns = stalePatterns([{ id: ID, ownerId: OWNER, publicBefore: false, publicAfter: false }]);
    expect(matches(getKey(ID, OWNER), patterns)).toBe(true);
    expect(matches(getKey(ID, OTHER), patterns)).toBe(true);
    expect(matches(getKey(ID, undefined), patterns)).toBe(true);
    expect(matches(getKey(OTHER_ID, OWNER), patterns)).toBe(false);
  });

  test("the owner's own listing pages are cleaned, other owners' are not", () => {
    const patterns = stalePatterns([{ id: ID, ownerId: OWNER, publicBefore: false, publicAfter: false }]);
    expect(matches(listCacheKey("media.list", { scope: "mine" }, OWNER), patterns)).toBe(true);
    expect(matches(listCacheKey("media.list", { scope: "mine", cursor: CURSOR, limit: "10" }, OWNER), patterns)).toBe(true);
    expect(matches(listCacheKey("media.list", { scope: "mine" }, OTHER), patterns)).toBe(false);
  });

  test("the public feed is cleaned only when the item is, or was, public; for every caller and every page", () => {
    const privateChange = stalePatterns([{ id: ID, ownerId: OWNER, publicBefore: false, publicAfter: false }]);
    const feedKeys = [
      listCacheKey("media.list", {}, undefined),
      listCacheKey("media.list", { scope: "public" }, OTHER),
      listCacheKey("media.list", { scope: "public", cursor: CURSOR, limit: 5 }, OWNER),
    ];
    for (const key of feedKeys) expect(matches(key, privateChange)).toBe(false);
    for (const [before, after] of [[true, false], [false, true], [true, true]] as const) {
      const patterns = stalePatterns([{ id: ID, ownerId: OWNER, publicBefore: before, publicAfter: after }]);
      for (const key of feedKeys) expect(matches(key, patterns)).toBe(true);
    }
  });

  test("the public feed is one entry whoever asks, anonymous or signed in", () => {
    const anonymous = listCacheKey("media.list", { scope: "public" }, undefined);
    expect(listCacheKey("media.list", { scope: "public" }, OWNER)).toBe(anonymous);
    expect(listCacheKey("media.list", { scope: "public" }, OTHER)).toBe(anonymous);
    expect(anonymous).not.toContain(OWNER);
  });

  test("the listing key fills in the defaults the validator will apply, so equivalent requests share an entry", () => {
    expect(listCacheKey("media.list", {}, undefined)).toBe(listCacheKey("media.list", { scope: "public", limit: 24 }, undefined));
    expect(listCacheKey("media.list", { limit: "24" }, OWNER)).toBe(listCacheKey("media.list", { limit: 24 }, OWNER));
    expect(listCacheKey("media.list", { scope: "mine" }, OWNER)).not.toBe(listCacheKey("media.list", { scope: "public" }, OWNER));
    expect(listCacheKey("media.list", { scope: "mine" }, OWNER)).not.toBe(listCacheKey("media.list", { scope: "mine" }, OTHER));
    expect(listCacheKey("media.list", { cursor: CURSOR }, OWNER)).not.toBe(listCacheKey("media.list", {}, OWNER));
    expect(MEDIA_LIST_CACHE_KEYS).toEqual(["scope", "#user.id", "cursor", "limit"]);
  });

  test("the popular feed has its own entries, shared by every caller, cleaned with the public feed; newest first keeps its key", () => {
    const popular = listCacheKey("media.list", { scope: "public", sort: "popular" }, undefined);
    expect(popular).toBe("media.list:public|sort=popular|undefined|24");
    expect(listCacheKey("media.list", { scope: "public", sort: "popular" }, OWNER)).toBe(popular);
    expect(listCacheKey("media.list", { scope: "public", sort: "newest" }, OWNER)).toBe(listCacheKey("media.list", { scope: "public" }, undefined));
    expect(popular).not.toBe(listCacheKey("media.list", { scope: "public" }, undefined));
    const madePublic = stalePatterns([{ id: ID, ownerId: OWNER, publicBefore: false, publicAfter: true }]);
    expect(matches(popular, madePublic)).toBe(true);
    expect(matches(listCacheKey("media.list", { scope: "public", sort: "popular", cursor: CURSOR, limit: 5 }, OTHER), madePublic)).toBe(true);
  });

  test("patterns are deduplicated across several changes", () => {
    const patterns = stalePatterns([
      { id: ID, ownerId: OWNER, publicBefore: true, publicAfter: false },
      { id: OTHER_ID, ownerId: OWNER, publicBefore: true, publicAfter: false },
    ]);
    expect(patterns.sort()).toEqual(
      [`media.get:${ID}|**`, `media.get:${OTHER_ID}|**`, `media.list:mine|${OWNER}|**`, "media.list:public|**"].sort(),
    );
  });

  test("a write of many items (an account's media) cleans all media.get answers with one pattern instead of one per item", () => {
    const many = Array.from({ length: MAX_ITEM_PATTERNS + 1 }, (_, i) => ({
      id: `${ID.slice(0, 19)}${String(i).padStart(2, "0")}`,
      ownerId: OWNER,
      publicBefore: false,
      publicAfter: false,
    }));
    const patterns = stalePatterns(many);
    expect(patterns.sort()).toEqual(["media.get:**", `media.list:mine|${OWNER}|**`]);
    expect(matches(getKey(OTHER_ID, OTHER), patterns)).toBe(true);
    expect(stalePatterns(many.slice(0, MAX_ITEM_PATTERNS)).filter((pattern) => pattern.startsWith("media.get:"))).toHaveLength(MAX_ITEM_PATTERNS);
  });

  test("cached answers live well under the signed URLs' lifetime, at most a minute and at most the cache TTL", () => {
    expect(mediaReadTtlSeconds(60, 900)).toBe(60);
    expect(mediaReadTtlSeconds(60, 120)).toBe(30);
    expect(mediaReadTtlSeconds(10, 900)).toBe(10);
    expect(mediaReadTtlSeconds(3600, 3600)).toBe(60);
    expect(mediaReadTtlSeconds(60, 2)).toBe(1);
  });
});
