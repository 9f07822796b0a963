import type { ServiceBroker } from "moleculer";

/** Prints the backup service's progress events while `work` runs (the REPL's node listens for them). */
export async function withBackupProgress<T>(broker: ServiceBroker, work: () => Promise<T>): Promise<T> {
  const listener = (payload: { message?: string }): void => {
    if (typeof payload.message === "string") console.log(payload.message);
  };
  const service = broker.createService({ name: `backup-progress-${process.pid}-${Date.now()}`, events: { "backup.progress": listener } });
  try {
    return await work();
  } finally {
    await broker.destroyService(service);
  }
}
