/**
 * Promoting a replica to primary after the primary is lost, as MaxScale and orchestrator do:
 * the replica with the most advanced GTID position wins; one that has received transactions it
 * has not applied (SQL thread behind the IO thread) is waited for, and refused when it does not
 * catch up, unless forced; a second promotion within the block window is refused, so that a
 * flapping server cannot make the primary bounce between machines.
 *
 * Servers are named host:port; credentials stay with the adapter behind PromotionPort.
 */

export interface ReplicaState {
  readonly server: string;
  readonly reachable: boolean;
  readonly error?: string;
  readonly ioRunning: boolean;
  readonly sqlRunning: boolean;
  /** Everything the replica has received into its relay log (MariaDB Gtid_IO_Pos). */
  readonly receivedPosition: string;
  /** Everything it has applied (MariaDB gtid_slave_pos). */
  readonly appliedPosition: string;
  readonly lastSqlError: string;
}

export interface PromotionPort {
  inspect(server: string): Promise<ReplicaState>;
  /** Waits up to timeoutMs for the server to apply the position; true when it has. */
  waitForApplied(server: string, position: string, timeoutMs: number): Promise<boolean>;
  /** Stops replication for good and forgets the old primary. */
  detach(server: string): Promise<void>;
  /** Turns read_only off (and, with semi-sync, makes it wait for a replica's acknowledgement). */
  makeWritable(server: string): Promise<void>;
  /** Points a replica at the new primary by GTID (MASTER_USE_GTID=slave_pos) and starts it. */
  replicateFrom(server: string, primary: string): Promise<void>;
}

/** Where promotions are recorded and the block window is held (shared by every operator and node). */
export interface FailoverLedger {
  /** Claims the block window; false when another promotion claimed it less than `seconds` ago. */
  claimWindow(seconds: number): Promise<boolean>;
  /** Gives the window back when a promotion was refused before it changed anything. */
  releaseWindow(): Promise<void>;
}

export interface PromotionRequest {
  readonly primary: string;
  readonly replicas: readonly string[];
  /** host:port of the replica to promote; default: the most advanced one. */
  readonly replica?: string;
  readonly force: boolean;
  readonly blockSeconds: number;
  /** How long to wait for the chosen replica to apply its relay log. */
  readonly applyTimeoutMs: number;
}

export interface PromotionResult {
  readonly primary: string;
  readonly previousPrimary: string;
  readonly replicas: readonly string[];
  /** Replicas that could not be pointed at the new primary (unreachable): the operator's to fix. */
  readonly unreachable: readonly string[];
  /** True when --force promoted a replica that had not applied everything it received. */
  readonly forced: boolean;
}

/** Refused before anything changed; the message says why and what to do. */
export class PromotionRefused extends Error {
  override readonly name = "PromotionRefused";
}

/** A MariaDB GTID list (`0-1-42,1-2-7`) as domain → sequence number. */
export function parseGtidList(position: string): Map<number, number> {
  const domains = new Map<number, number>();
  for (const part of position.split(",").map((item) => item.trim()).filter((item) => item !== "")) {
    const match = /^(\d+)-(\d+)-(\d+)$/.exec(part);
    if (!match) throw new Error(`not a MariaDB GTID position: ${JSON.stringify(position)}`);
    const domain = Number(match[1]);
    domains.set(domain, Math.max(domains.get(domain) ?? 0, Number(match[3])));
  }
  return domains;
}

/** True when position `a` contains everything in `b` (every domain at least as far). */
export function gtidCovers(a: string, b: string): boolean {
  const left = parseGtidList(a);
  for (const [domain, sequence] of parseGtidList(b)) {
    if ((left.get(domain) ?? 0) < sequence) return false;
  }
  return true;
}

function transactionCount(position: string): number {
  let total = 0;
  for (const sequence of parseGtidList(position).values()) total += sequence;
  return total;
}

/** What a replica will have once it has applied its relay log. */
function reachablePosition(state: ReplicaState): string {
  return gtidCovers(state.receivedPosition, state.appliedPosition) ? state.receivedPosition : state.appliedPosition;
}

/** The most advanced replica: one whose position covers every other's, else the one with the most transactions. */
export function mostAdvanced(states: readonly ReplicaState[]): ReplicaState | undefined {
  const candidates = states.filter((state) => state.reachable);
  const dominant = candidates.find((state) =>
    candidates.every((other) => gtidCovers(reachablePosition(state), reachablePosition(other))),
  );
  if (dominant) return dominant;
  return [...candidates].sort((a, b) => transactionCount(reachablePosition(b)) - transactionCount(reachablePosition(a)))[0];
}

function relayLogApplied(state: ReplicaState): boolean {
  return gtidCovers(state.appliedPosition, state.receivedPosition);
}

async function choose(port: PromotionPort, request: PromotionRequest): Promise<{ chosen: ReplicaState; forced: boolean }> {
  if (request.replicas.length === 0) throw new PromotionRefused("This database has no replica to promote.");
  if (request.replica !== undefined && !request.replicas.includes(request.replica)) {
    throw new PromotionRefused(`${request.replica} is not a replica of this database (replicas: ${request.replicas.join(", ")}).`);
  }
  const states = await Promise.all(request.replicas.map((server) => port.inspect(server)));
  const chosen = request.replica === undefined ? mostAdvanced(states) : states.find((state) => state.server === request.replica);
  if (!chosen?.reachable) {
    const why = states.map((state) => `${state.server}: ${state.error ?? "unreachable"}`).join("; ");
    throw new PromotionRefused(chosen ? `${chosen.server} cannot be reached (${chosen.error ?? "no answer"}).` : `No replica can be reached (${why}).`);
  }
  if (relayLogApplied(chosen)) return { chosen, forced: false };
  const behind = `${chosen.server} has received transactions up to ${chosen.receivedPosition} but applied only ${chosen.appliedPosition}`;
  if (chosen.sqlRunning && (await port.waitForApplied(chosen.server, chosen.receivedPosition, request.applyTimeoutMs))) {
    return { chosen: await port.inspect(chosen.server), forced: false };
  }
  if (request.force) return { chosen, forced: true };
  const sqlThread = chosen.sqlRunning ? `did not catch up within ${request.applyTimeoutMs} ms` : `its SQL thread is stopped${chosen.lastSqlError ? ` (${chosen.lastSqlError})` : ""}`;
  throw new PromotionRefused(`${behind}, and ${sqlThread}. Promoting it would lose them; fix its replication, or use --force to accept the loss.`);
}

/**
 * Promotes a replica: chooses it, waits for its relay log, detaches it, makes it writable, and
 * points the other replicas at it. The old primary is left out of the new topology: it may hold
 * transactions no replica received, so it rejoins only after an operator has checked it.
 */
export async function promoteReplica(port: PromotionPort, ledger: FailoverLedger, request: PromotionRequest): Promise<PromotionResult> {
  if (!(await ledger.claimWindow(request.blockSeconds))) {
    throw new PromotionRefused(
      `A promotion already happened less than DB_FAILOVER_BLOCK_SECONDS (${request.blockSeconds} s) ago; check the new primary before promoting again.`,
    );
  }
  let chosen: ReplicaState;
  let forced: boolean;
  try {
    ({ chosen, forced } = await choose(port, request));
  } catch (error) {
    await ledger.releaseWindow();
    throw error;
  }
  await port.detach(chosen.server);
  await port.makeWritable(chosen.server);
  const others = request.replicas.filter((server) => server !== chosen.server);
  const outcomes = await Promise.allSettled(others.map((server) => port.replicateFrom(server, chosen.server)));
  const unreachable = others.filter((_, index) => outcomes[index]?.status === "rejected");
  return { primary: chosen.server, previousPrimary: request.primary, replicas: others, unreachable, forced };
}
