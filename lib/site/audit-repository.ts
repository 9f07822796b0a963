import { monotonicFactory } from "ulid";
import type { Database } from "../db/database";
import type { AuditLogTable, SiteDatabase } from "../db/schemas/site";

export interface AuditRecord {
  readonly id: string;
  readonly at: string;
  readonly action: string;
  readonly actorId: string | null;
  readonly subjectId: string | null;
  readonly ip: string | null;
  readonly detail: Record<string, unknown> | null;
}

export interface AuditPage {
  readonly items: readonly AuditRecord[];
  readonly nextCursor: string | null;
}

function toRecord(row: AuditLogTable): AuditRecord {
  return {
    id: row.id,
    at: new Date(row.at).toISOString(),
    action: row.action,
    actorId: row.actor_id,
    subjectId: row.subject_id,
    ip: row.ip,
    detail: row.detail === null ? null : (JSON.parse(row.detail) as Record<string, unknown>),
  };
}

/** Ids that grow even within one millisecond, so that newest-first is exact on this node. */
const ulid = monotonicFactory();

export class AuditRepository {
  constructor(
    private readonly db: Database<SiteDatabase>,
    private readonly now: () => number = Date.now,
  ) {}

  async record(entry: {
    action: string;
    actorId: string | null;
    subjectId: string | null;
    ip: string | null;
    detail?: Record<string, unknown>;
  }): Promise<AuditRecord> {
    const at = this.now();
    const row: AuditLogTable = {
      id: ulid(at),
      at,
      action: entry.action,
      actor_id: entry.actorId,
      subject_id: entry.subjectId,
      ip: entry.ip,
      detail: entry.detail === undefined ? null : JSON.stringify(entry.detail),
    };
    await this.db.write((trx) => trx.insertInto("audit_log").values(row).execute());
    return toRecord(row);
  }

  /** Newest first. The cursor is the id of the last item of the previous page; ids are time-ordered, so new entries never shift a page. */
  async list(cursor: string | undefined, limit: number): Promise<AuditPage> {
    const rows = await this.db.read((db) => {
      let query = db.selectFrom("audit_log").selectAll().orderBy("id", "desc").limit(limit + 1);
      if (cursor !== undefined) query = query.where("id", "<", cursor);
      return query.execute();
    });
    const page = rows.slice(0, limit);
    return { items: page.map(toRecord), nextCursor: rows.length > limit ? (page[page.length - 1]?.id ?? null) : null };
  }
}
