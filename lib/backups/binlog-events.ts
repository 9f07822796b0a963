/**
 * Just enough of MariaDB's binary log format to archive it safely: where the last complete event ends
 * (so an upload never ends inside an event), the GTID state a file starts from (its Gtid_list event),
 * and the last GTID of each replication domain in it.
 *
 *   file:   0xfe 'b' 'i' 'n', then events
 *   event:  timestamp (4) | type (1) | server id (4) | size (4, header included) | next position (4) | flags (2) | body
 */
export const BINLOG_MAGIC = Buffer.from([0xfe, 0x62, 0x69, 0x6e]);
const HEADER_BYTES = 19;
const GTID_EVENT = 162;
const GTID_LIST_EVENT = 163;

/** The last sequence number seen per GTID domain (the server id of that GTID beside it). */
export type GtidState = Map<number, { readonly serverId: number; readonly seq: bigint }>;

export function formatGtidState(state: GtidState): string {
  return [...state.entries()]
    .sort(([a], [b]) => a - b)
    .map(([domain, { serverId, seq }]) => `${domain}-${serverId}-${seq}`)
    .join(",");
}

export function parseGtidState(text: string): GtidState {
  const state: GtidState = new Map();
  for (const part of text.split(",").map((item) => item.trim()).filter((item) => item !== "")) {
    const match = /^(\d+)-(\d+)-(\d+)$/.exec(part);
    if (!match) throw new Error(`"${part}" is not a GTID (domain-server-sequence)`);
    state.set(Number(match[1]), { serverId: Number(match[2]), seq: BigInt(match[3]!) });
  }
  return state;
}

/** What scanning a file so far found. */
export interface BinlogScan {
  /** Bytes up to the end of the last complete event (0 until the magic number is complete). */
  complete: number;
  /** The GTID state at the start of the file, once its Gtid_list event was read. */
  startState: GtidState | undefined;
  /** The last GTID per domain among the file's events so far. */
  readonly lastGtids: GtidState;
  /** When the last complete event was written (seconds since the epoch), 0 before any. */
  lastEventTime: number;
}

export function emptyScan(): BinlogScan {
  return { complete: 0, startState: undefined, lastGtids: new Map(), lastEventTime: 0 };
}

/**
 * Reads the events of `bytes` (the file's content from `scan.complete` on) that are complete, and
 * moves `scan` past them; an incomplete event at the end is left for the next call.
 */
export function scanEvents(scan: BinlogScan, bytes: Buffer): void {
  let offset = 0;
  if (scan.complete === 0) {
    if (bytes.length < BINLOG_MAGIC.length) return;
    if (!bytes.subarray(0, BINLOG_MAGIC.length).equals(BINLOG_MAGIC)) throw new Error("not a binary log (its magic number is missing)");
    offset = BINLOG_MAGIC.length;
  }
  while (offset + HEADER_BYTES <= bytes.length) {
    const size = bytes.readUInt32LE(offset + 9);
    if (size < HEADER_BYTES) throw new Error(`a binary log event at byte ${scan.complete + offset} claims ${size} bytes`);
    if (offset + size > bytes.length) break;
    const type = bytes.readUInt8(offset + 4);
    const body = bytes.subarray(offset + HEADER_BYTES, offset + size);
    if (type === GTID_EVENT && body.length >= 12) {
      scan.lastGtids.set(body.readUInt32LE(8), { serverId: bytes.readUInt32LE(offset + 5), seq: body.readBigUInt64LE(0) });
    } else if (type === GTID_LIST_EVENT && scan.startState === undefined && body.length >= 4) {
      scan.startState = gtidListOf(body);
    }
    scan.lastEventTime = bytes.readUInt32LE(offset);
    offset += size;
  }
  scan.complete += offset;
}

/** A Gtid_list event's body: a count (low 28 bits), then (domain, server id, sequence) per entry; the highest sequence per domain. */
function gtidListOf(body: Buffer): GtidState {
  const count = body.readUInt32LE(0) & 0x0fffffff;
  const state: GtidState = new Map();
  for (let index = 0; index < count && 4 + (index + 1) * 16 <= body.length; index++) {
    const at = 4 + index * 16;
    const domain = body.readUInt32LE(at);
    const seq = body.readBigUInt64LE(at + 8);
    const known = state.get(domain);
    if (!known || seq > known.seq) state.set(domain, { serverId: body.readUInt32LE(at + 4), seq });
  }
  return state;
}

/** The domains in which `next` starts past what `archived` holds: the GTIDs between are missing. */
export function gtidGaps(archived: GtidState, next: GtidState): { domain: number; missingFrom: bigint; missingTo: bigint }[] {
  const gaps: { domain: number; missingFrom: bigint; missingTo: bigint }[] = [];
  for (const [domain, { seq }] of next) {
    const have = archived.get(domain)?.seq ?? 0n;
    if (seq > have) gaps.push({ domain, missingFrom: have + 1n, missingTo: seq });
  }
  return gaps;
}
