import type { Kysely } from "kysely";
import { MysqlAdapter, sql } from "kysely";
import { unlessThere } from "../steps";

/**
 * Snapshots by period: each metric_snapshots row belongs to one hourly or daily period (taking a period
 * again replaces its rows), and the period's top lists go to snapshot_rankings. The stats_* views are
 * for analysts' tools (README: "Stats for analysts").
 */

export async function up(db: Kysely<unknown>): Promise<void> {
  await unlessThere(() =>
    db.schema.alterTable("metric_snapshots").addColumn("period", "varchar(8)", (col) => col.notNull().defaultTo("hour")).execute(),
  );
  await unlessThere(() =>
    db.schema.alterTable("metric_snapshots").addColumn("period_start", "bigint", (col) => col.notNull().defaultTo(0)).execute(),
  );
  await unlessThere(() =>
    db.schema.createIndex("metric_snapshots_period").on("metric_snapshots").columns(["period", "name", "period_start"]).execute(),
  );
  await unlessThere(() =>
    db.schema.createIndex("metric_snapshots_period_start").on("metric_snapshots").columns(["period", "period_start"]).execute(),
  );
  await db.schema
    .createTable("snapshot_rankings")
    .ifNotExists()
    .addColumn("period", "varchar(8)", (col) => col.notNull())
    .addColumn("period_start", "bigint", (col) => col.notNull())
    .addColumn("list", "varchar(16)", (col) => col.notNull())
    .addColumn("position", "integer", (col) => col.notNull())
    .addColumn("subject_id", "varchar(26)", (col) => col.notNull())
    .addColumn("label", "varchar(200)")
    .addColumn("owner_label", "varchar(100)")
    .addColumn("value", "double precision", (col) => col.notNull())
    .addColumn("second_value", "double precision", (col) => col.notNull())
    .addPrimaryKeyConstraint("snapshot_rankings_pk", ["period", "period_start", "list", "position"])
    .execute();

  const mysql = db.getExecutor().adapter instanceof MysqlAdapter;
  const at = mysql ? sql.raw("from_unixtime(period_start / 1000)") : sql.raw("datetime(period_start / 1000, 'unixepoch')");
  const replace = mysql ? sql.raw("create or replace view") : sql.raw("create view if not exists");
  await sql`${replace} stats_hourly as select ${at} as period_start, name as metric, labels as label, value from metric_snapshots where period = 'hour'`.execute(db);
  await sql`${replace} stats_daily as select ${at} as period_start, name as metric, labels as label, value from metric_snapshots where period = 'day'`.execute(db);
  await sql`${replace} stats_top_uploaders as select period, ${at} as period_start, position, subject_id as user_id, owner_label as name, value as bytes, second_value as items from snapshot_rankings where list = 'uploaders'`.execute(db);
  await sql`${replace} stats_top_items as select period, ${at} as period_start, position, subject_id as media_id, label as title, owner_label as owner_name, value as views, second_value as unique_viewers from snapshot_rankings where list = 'items'`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const view of ["stats_top_items", "stats_top_uploaders", "stats_daily", "stats_hourly"]) await sql`drop view if exists ${sql.raw(view)}`.execute(db);
  await db.schema.dropTable("snapshot_rankings").ifExists().execute();
}
