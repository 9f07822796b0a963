import { MAINTENANCE_OFF, MaintenanceSwitch, MemoryMaintenanceStore, maintenanceRefusal } from "../../lib/ops/maintenance";
import type { MaintenanceState, MaintenanceStore } from "../../lib/ops/maintenance";

const on: MaintenanceState = { on: true, message: "Back soon.", retryAfterSeconds: 60, since: "2026-12-05T06:00:00.000Z", by: "admin" };

describe("maintenance rules", () => {
  it("refuses changes while on, with the message and Retry-After; never reads, nor sign-in, sign-out and the switch", () => {
    for (const method of ["POST", "PUT", "PATCH", "DELETE", "post"]) {
      expect(maintenanceRefusal(on, method, "media.update")).toMatchObject({ status: 503, code: "maintenance", message: "Back soon.", retryAfterSeconds: 60 });
    }
    expect(maintenanceRefusal(on, "PATCH", undefined)).toMatchObject({ status: 503 });
    for (const method of ["GET", "HEAD", "OPTIONS", undefined]) expect(maintenanceRefusal(on, method, "media.get")).toBeUndefined();
    for (const action of ["users.login", "users.logout", "api.setMaintenance"]) expect(maintenanceRefusal(on, "POST", action)).toBeUndefined();
    expect(maintenanceRefusal(MAINTENANCE_OFF, "POST", "users.register")).toBeUndefined();
  });

  it("a node re-reads the store every 2 s, learns a broadcast at once, and keeps the last state while the store fails", async () => {
    let now = 0;
    let failing = false;
    const memory = new MemoryMaintenanceStore();
    const store: MaintenanceStore = { read: () => (failing ? Promise.reject(new Error("down")) : memory.read()), write: (state) => memory.write(state) };
    const node = new MaintenanceSwitch(store, () => now);
    expect((await node.current()).on).toBe(false);
    await memory.write(on);
    now = 1_999;
    expect((await node.current()).on).toBe(false);
    now = 2_000;
    expect(await node.current()).toEqual(on);
    failing = true;
    now = 10_000;
    expect(await node.current()).toEqual(on);
    node.learn(MAINTENANCE_OFF);
    expect((await node.current()).on).toBe(false);
  });

  it("switching on fills in the default message and Retry-After", async () => {
    const node = new MaintenanceSwitch(new MemoryMaintenanceStore(), () => Date.parse("2026-12-05T06:00:00Z"));
    expect(await node.set({ on: true, by: "operator" })).toMatchObject({ on: true, message: expect.stringContaining("maintenance"), retryAfterSeconds: 300, since: "2026-12-05T06:00:00.000Z", by: "operator" });
    expect(await node.set({ on: false, by: "operator" })).toEqual(MAINTENANCE_OFF);
  });
});
