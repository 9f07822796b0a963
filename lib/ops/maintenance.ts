import type { Redis } from "ioredis";
import { AppError } from "../errors";

/**
 * The maintenance switch: while it is on, every change through the API answers 503 with the operator's
 * message and Retry-After, and reads go on. It is kept where every node sees it (Redis in cluster mode, so
 * restoring a database does not switch it off; the node's memory in embedded mode, where one node is the
 * site), and each api node keeps a copy it refreshes on the broadcast sent when the switch changes, and at
 * the latest every REFRESH_MS.
 */

export interface MaintenanceState {
  readonly on: boolean;
  readonly message: string;
  readonly retryAfterSeconds: number;
  /** ISO time it was switched on; null while off. */
  readonly since: string | null;
  /** Who switched it (an admin's id, or "repl"). */
  readonly by: string | null;
}

export const MAINTENANCE_OFF: MaintenanceState = { on: false, message: "", retryAfterSeconds: 0, since: null, by: null };
export const DEFAULT_MAINTENANCE_MESSAGE = "The site is under maintenance: changes are paused for a while. Reading still works.";
export const DEFAULT_RETRY_AFTER_SECONDS = 300;
/** Broadcast to every node when the switch changes. */
export const MAINTENANCE_CHANGED_EVENT = "maintenance.changed";
const REDIS_KEY = "shoal:maintenance";
const REFRESH_MS = 2_000;

export interface MaintenanceStore {
  read(): Promise<MaintenanceState>;
  write(state: MaintenanceState): Promise<void>;
}

export class MemoryMaintenanceStore implements MaintenanceStore {
  private state = MAINTENANCE_OFF;

  async read(): Promise<MaintenanceState> {
    return this.state;
  }

  async write(state: MaintenanceState): Promise<void> {
    this.state = state;
  }
}

/** No expiry: the switch stays until an operator turns it off. */
export class RedisMaintenanceStore implements MaintenanceStore {
  constructor(private readonly redis: Redis) {}

  async read(): Promise<MaintenanceState> {
    const text = await this.redis.get(REDIS_KEY);
    return text === null ? MAINTENANCE_OFF : (JSON.parse(text) as MaintenanceState);
  }

  async write(state: MaintenanceState): Promise<void> {
    if (state.on) await this.redis.set(REDIS_KEY, JSON.stringify(state));
    else await this.redis.del(REDIS_KEY);
  }
}

export function maintenanceStoreFor(redis: Redis | undefined): MaintenanceStore {
  return redis === undefined ? new MemoryMaintenanceStore() : new RedisMaintenanceStore(redis);
}

export class MaintenanceError extends AppError {
  constructor(state: MaintenanceState) {
    super(503, "maintenance", state.message || DEFAULT_MAINTENANCE_MESSAGE, undefined, state.retryAfterSeconds || DEFAULT_RETRY_AFTER_SECONDS);
  }
}

const CHANGES = new Set(["POST", "PUT", "PATCH", "DELETE"]);
/** Changes let through: signing in and out (so that admins can reach the switch), and the switch itself. */
export const MAINTENANCE_EXEMPT_ACTIONS: ReadonlySet<string> = new Set(["users.login", "users.logout", "api.setMaintenance"]);

/** The refusal for a request while the switch is on: any change (uploads included) but the exempt actions; reads never. */
export function maintenanceRefusal(state: MaintenanceState, method: string | undefined, action: string | undefined): MaintenanceError | undefined {
  if (!state.on || !CHANGES.has((method ?? "GET").toUpperCase())) return undefined;
  if (action !== undefined && MAINTENANCE_EXEMPT_ACTIONS.has(action)) return undefined;
  return new MaintenanceError(state);
}

/** One node's view of the switch. */
export class MaintenanceSwitch {
  private state: MaintenanceState = MAINTENANCE_OFF;
  private readAt = -Infinity;

  constructor(
    private readonly store: MaintenanceStore,
    private readonly now: () => number = Date.now,
  ) {}

  /** The switch as last known: read again when older than REFRESH_MS; while the store cannot be read, the last state known holds. */
  async current(): Promise<MaintenanceState> {
    if (this.now() - this.readAt >= REFRESH_MS) {
      this.readAt = this.now();
      try {
        this.state = await this.store.read();
      } catch {
        // keep the last state known
      }
    }
    return this.state;
  }

  /** Another node changed it (the broadcast). */
  learn(state: MaintenanceState): void {
    this.state = state;
    this.readAt = this.now();
  }

  async set(change: { on: boolean; message?: string; retryAfterSeconds?: number; by: string }): Promise<MaintenanceState> {
    const state: MaintenanceState = change.on
      ? {
          on: true,
          message: change.message ?? DEFAULT_MAINTENANCE_MESSAGE,
          retryAfterSeconds: change.retryAfterSeconds ?? DEFAULT_RETRY_AFTER_SECONDS,
          since: new Date(this.now()).toISOString(),
          by: change.by,
        }
      : MAINTENANCE_OFF;
    await this.store.write(state);
    this.learn(state);
    return state;
  }
}
