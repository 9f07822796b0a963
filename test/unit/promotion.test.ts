import { gtidCovers, mostAdvanced, PromotionRefused, promoteReplica } from "../../lib/db/promotion";
import type { FailoverLedger, PromotionPort, PromotionRequest, ReplicaState } from "../../lib/db/promotion";
import { resolveTopology } from "../../lib/db/topology";

function replica(server: string, received: string, applied = received, overrides: Partial<ReplicaState> = {}): ReplicaState {
  return { server, reachable: true, ioRunning: true, sqlRunning: true, receivedPosition: received, appliedPosition: applied, lastSqlError: "", ...overrides };
}

class FakePort implements PromotionPort {
  readonly calls: string[] = [];
  /** Positions a replica reaches when waited for (its SQL thread applies them). */
  readonly catchesUp = new Set<string>();

  constructor(readonly states: Map<string, ReplicaState>) {}

  async inspect(server: string): Promise<ReplicaState> {
    const state = this.states.get(server);
    if (!state) throw new Error(`no ${server}`);
    return state;
  }

  async waitForApplied(server: string, position: string): Promise<boolean> {
    this.calls.push(`wait ${server} ${position}`);
    if (!this.catchesUp.has(server)) return false;
    this.states.set(server, { ...(await this.inspect(server)), appliedPosition: position });
    return true;
  }

  async detach(server: string): Promise<void> {
    this.calls.push(`detach ${server}`);
  }

  async makeWritable(server: string): Promise<void> {
    this.calls.push(`writable ${server}`);
  }

  async replicateFrom(server: string, primary: string): Promise<void> {
    this.calls.push(`follow ${server} ${primary}`);
    if (this.states.get(server)?.reachable === false) throw new Error("unreachable");
  }
}

class FakeLedger implements FailoverLedger {
  claimed = false;

  async claimWindow(): Promise<boolean> {
    if (this.claimed) return false;
    this.claimed = true;
    return true;
  }

  async releaseWindow(): Promise<void> {
    this.claimed = false;
  }
}

function portWith(...states: ReplicaState[]): FakePort {
  return new FakePort(new Map(states.map((state) => [state.server, state])));
}

function request(overrides: Partial<PromotionRequest> = {}): PromotionRequest {
  return { primary: "db1:3306", replicas: ["db2:3306", "db3:3306"], force: false, blockSeconds: 3600, applyTimeoutMs: 1000, ...overrides };
}

describe("GTID positions", () => {
  it("compare domain by domain", () => {
    expect(gtidCovers("0-1-10,1-2-5", "0-1-9")).toBe(true);
    expect(gtidCovers("0-1-10", "0-1-10,1-2-1")).toBe(false);
    expect(gtidCovers("0-2-11", "0-1-10")).toBe(true);
    expect(gtidCovers("", "")).toBe(true);
    expect(() => gtidCovers("uuid:1-5", "")).toThrow(/not a MariaDB GTID position/);
  });

  it("the most advanced replica is the one that will have received the most once its relay log is applied", () => {
    const chosen = mostAdvanced([replica("a", "0-1-10"), replica("b", "0-1-12", "0-1-8"), replica("c", "0-1-11", "0-1-11", { reachable: false })]);
    expect(chosen?.server).toBe("b");
  });
});

describe("promoteReplica", () => {
  it("promotes the most advanced replica and points the others at it", async () => {
    const port = portWith(replica("db2:3306", "0-1-40"), replica("db3:3306", "0-1-42"));
    const result = await promoteReplica(port, new FakeLedger(), request());
    expect(result).toEqual({ primary: "db3:3306", previousPrimary: "db1:3306", replicas: ["db2:3306"], unreachable: [], forced: false });
    expect(port.calls).toEqual(["detach db3:3306", "writable db3:3306", "follow db2:3306 db3:3306"]);
  });

  it("waits for the chosen replica to apply its relay log before detaching it", async () => {
    const port = portWith(replica("db2:3306", "0-1-40"), replica("db3:3306", "0-1-42", "0-1-39"));
    port.catchesUp.add("db3:3306");
    const result = await promoteReplica(port, new FakeLedger(), request());
    expect(result.primary).toBe("db3:3306");
    expect(port.calls.slice(0, 2)).toEqual(["wait db3:3306 0-1-42", "detach db3:3306"]);
  });

  it("refuses a replica whose SQL thread is stopped behind its IO thread, and changes nothing", async () => {
    const port = portWith(replica("db2:3306", "0-1-42", "0-1-30", { sqlRunning: false, lastSqlError: "Duplicate entry" }), replica("db3:3306", "0-1-41"));
    const ledger = new FakeLedger();
    const promotion = promoteReplica(port, ledger, request({ replica: "db2:3306" }));
    await expect(promotion).rejects.toThrow(PromotionRefused);
    await expect(promotion).rejects.toThrow(/received transactions up to 0-1-42 but applied only 0-1-30, and its SQL thread is stopped \(Duplicate entry\)/);
    expect(port.calls).toEqual([]);
    expect(ledger.claimed).toBe(false);
  });

  it("refuses a replica that does not catch up in time, unless forced", async () => {
    const states = [replica("db2:3306", "0-1-42", "0-1-30"), replica("db3:3306", "0-1-41")];
    await expect(promoteReplica(portWith(...states), new FakeLedger(), request({ replica: "db2:3306" }))).rejects.toThrow(/did not catch up within 1000 ms/);
    const forced = await promoteReplica(portWith(...states), new FakeLedger(), request({ replica: "db2:3306", force: true }));
    expect(forced).toMatchObject({ primary: "db2:3306", forced: true });
  });

  it("refuses a second promotion within the block window", async () => {
    const ledger = new FakeLedger();
    await promoteReplica(portWith(replica("db2:3306", "0-1-1"), replica("db3:3306", "0-1-1")), ledger, request());
    const port = portWith(replica("db3:3306", "0-2-5"));
    await expect(promoteReplica(port, ledger, request({ primary: "db2:3306", replicas: ["db3:3306"] }))).rejects.toThrow(/DB_FAILOVER_BLOCK_SECONDS \(3600 s\)/);
    expect(port.calls).toEqual([]);
  });

  it("names the problem when the replica asked for is not one, or none can be reached", async () => {
    const port = portWith(replica("db2:3306", "0-1-1", "0-1-1", { reachable: false, error: "connect ECONNREFUSED" }), replica("db3:3306", "", "", { reachable: false, error: "timeout" }));
    await expect(promoteReplica(port, new FakeLedger(), request({ replica: "db9:3306" }))).rejects.toThrow(/db9:3306 is not a replica of this database/);
    await expect(promoteReplica(port, new FakeLedger(), request())).rejects.toThrow(/No replica can be reached \(db2:3306: connect ECONNREFUSED; db3:3306: timeout\)/);
    await expect(promoteReplica(port, new FakeLedger(), request({ replicas: [] }))).rejects.toThrow(/no replica to promote/);
  });

  it("reports replicas it could not point at the new primary", async () => {
    const port = portWith(replica("db2:3306", "0-1-5"), replica("db3:3306", "0-1-4", "0-1-4", { reachable: false }));
    const result = await promoteReplica(port, new FakeLedger(), request());
    expect(result).toMatchObject({ primary: "db2:3306", replicas: ["db3:3306"], unreachable: ["db3:3306"] });
  });
});

describe("resolveTopology", () => {
  const configured = { primaryUrl: "mysql://app:pw@db1:3306", replicaUrls: ["mysql://app:pw@db2:3306", "mysql://app:pw@db3"] };
  const stored = { primary: "db2:3306", replicas: ["db3:3306"], previousPrimary: "db1:3306", promotedAt: "2026-12-04T21:00:00Z" };

  it("uses the stored roles with the settings' credentials", () => {
    expect(resolveTopology(configured, stored)).toEqual({
      source: "stored",
      urls: { primaryUrl: "mysql://app:pw@db2:3306", replicaUrls: ["mysql://app:pw@db3"] },
    });
  });

  it("uses the settings when nothing is stored, or once they name the stored primary", () => {
    expect(resolveTopology(configured, undefined)).toEqual({ source: "settings", urls: configured });
    const caughtUp = { primaryUrl: "mysql://app:pw@db2:3306", replicaUrls: ["mysql://app:pw@db1:3306"] };
    expect(resolveTopology(caughtUp, stored)).toEqual({ source: "settings", urls: caughtUp });
  });

  it("ignores a stored topology naming servers the settings do not list", () => {
    const resolved = resolveTopology(configured, { ...stored, primary: "db7:3306" });
    expect(resolved).toEqual({ source: "settings", urls: configured, ignored: expect.stringContaining("db7:3306") });
  });
});
