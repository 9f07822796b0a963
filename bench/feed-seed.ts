/**
 * The data of the feed benchmark (bench/feed.ts), in both stacks:
 * - the seed's stack: ../shared/baselines/php/seed.sql (database `seedsite`) through its run.sh, as root over
 *   the primary's socket; the `shoal` account gets SELECT on it for PHP.
 * - Shoal: the same 10,000 users and 100,000 items straight in SQL into shoal_membership and shoal_media
 *   (after a node has run the migrations). Users get ULIDs, items 21-character ids; what seed.sql derives
 *   from its row number (owner, kind, title, size, visibility, status, time) is derived the same way, so the
 *   feed lists the same items in the same order. Ready items get `thumb` and `display` variants (WebP);
 *   failed items none, with a reason.
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import path from "node:path";
import { promisify } from "node:util";
import { nanoid } from "nanoid";
import { monotonicFactory } from "ulid";
import type { MariaDbReplicationSet } from "../scripts/services";
import { PROJECT_ROOT } from "./harness/common";

/** The seed's stack, resolved from the repository root (never copied into it). */
export const PHP_BASELINE_DIR = path.resolve(PROJECT_ROOT, "../shared/baselines/php");

export const USERS = 10_000;
export const ITEMS = 100_000;
const BATCH = 5000;
const KINDS = ["image", "video", "audio"] as const;
const VISIBILITIES = ["public", "private", "unlisted"] as const;
const MIME = { image: "image/jpeg", video: "video/mp4", audio: "audio/mpeg" } as const;
const EXTENSION = { image: "jpg", video: "mp4", audio: "mp3" } as const;
const START_2026 = Date.UTC(2026, 0, 1);

/** Loads seed.sql with run.sh (mariadb as root over the socket), lets `shoal` read it, and analyses the tables. */
export async function seedPhpBaseline(mariadb: MariaDbReplicationSet, appUser: string): Promise<void> {
  await promisify(execFile)(path.join(PHP_BASELINE_DIR, "run.sh"), ["seed", "-uroot", "-S", mariadb.primary.socket], { maxBuffer: 16 * 1024 * 1024 });
  await mariadb.primary.query(`GRANT SELECT ON seedsite.* TO ?@'%'`, [appUser]);
  await mariadb.primary.query("ANALYZE TABLE seedsite.media, seedsite.users");
}

async function insertRows(mariadb: MariaDbReplicationSet, table: string, columns: readonly string[], rows: unknown[][]): Promise<void> {
  for (let start = 0; start < rows.length; start += BATCH) {
    await mariadb.primary.query(`INSERT INTO ${table} (${columns.join(", ")}) VALUES ?`, [rows.slice(start, start + BATCH)]);
  }
}

/** What the seed's row number `n` (1-based) gives an item, as seed.sql computes it. */
export function seedItem(n: number) {
  const kind = KINDS[n % 3]!;
  return {
    ownerIndex: (n * 7919) % USERS, // seed.sql: owner_id = 1 + (seq * 7919) % 10000, users numbered from 1
    kind,
    title: `Upload number ${n}`,
    visibility: VISIBILITIES[n % 3]!,
    status: n % 50 === 0 ? ("failed" as const) : ("ready" as const),
    createdAt: START_2026 + n * 60_000, // TIMESTAMP('2026-01-01') + INTERVAL seq MINUTE
  };
}

/** Fills shoal_membership.users, shoal_media.media and shoal_media.variants (tables made by the migrations). */
export async function seedShoal(mariadb: MariaDbReplicationSet, prefix = "shoal_"): Promise<{ users: number; items: number; variants: number }> {
  const membership = `\`${prefix}membership\``;
  const media = `\`${prefix}media\``;
  const newUlid = monotonicFactory();
  const userIds: string[] = [];
  const users: unknown[][] = [];
  for (let n = 1; n <= USERS; n += 1) {
    const createdAt = START_2026 - 86_400_000 + n * 1000;
    const id = newUlid(createdAt);
    userIds.push(id);
    const name = `user${n}`;
    users.push([id, name, name, `${name}@example.test`, `${name}@example.test`, null, "user", 5 * 1024 ** 3, 0, createdAt, createdAt]);
  }
  await insertRows(mariadb, `${membership}.users`, ["id", "username", "username_key", "email", "email_key", "password_hash", "role", "quota_bytes", "used_bytes", "created_at", "updated_at"], users);

  const items: unknown[][] = [];
  const variants: unknown[][] = [];
  for (let n = 1; n <= ITEMS; n += 1) {
    const item = seedItem(n);
    const id = nanoid(21);
    const bytes = 1_500_000 + (n % 997) * 1000;
    const duration = item.kind === "image" ? null : 30;
    items.push([
      id, userIds[item.ownerIndex], item.kind, item.title, null, item.visibility, item.status,
      item.status === "failed" ? "The file could not be processed." : null,
      `media/${id}/original.${EXTENSION[item.kind]}`, bytes, MIME[item.kind], createHash("sha256").update(`seed ${n}`).digest("hex"),
      1600, 1067, duration, null, MIME[item.kind], `upload-${n}.${EXTENSION[item.kind]}`, 1, null, null, item.createdAt, item.createdAt,
    ]);
    if (item.status === "ready") {
      variants.push([id, "thumb", `media/${id}/thumb.webp`, "image/webp", 320, 213, 14_000 + (n % 97) * 10, null, item.createdAt]);
      variants.push([id, "display", `media/${id}/display.webp`, "image/webp", 1600, 1067, 180_000 + (n % 89) * 100, null, item.createdAt]);
    }
  }
  await insertRows(mariadb, `${media}.media`, [
    "id", "owner_id", "kind", "title", "description", "visibility", "status", "reason", "original_key", "bytes", "mime", "sha256",
    "width", "height", "duration_seconds", "placeholder", "declared_mime", "original_name", "attempts", "progress_stage", "progress_percent", "created_at", "updated_at",
  ], items);
  await insertRows(mariadb, `${media}.variants`, ["media_id", "name", "object_key", "mime", "width", "height", "bytes", "duration_seconds", "created_at"], variants);
  await mariadb.primary.query(`ANALYZE TABLE ${membership}.users, ${media}.media, ${media}.variants`);
  return { users: users.length, items: items.length, variants: variants.length };
}
