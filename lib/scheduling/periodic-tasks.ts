import type { LeaseLock } from "../jobs/lease-lock";
import { PeriodicTask } from "./periodic-task";
import type { PeriodicTaskOptions, PeriodicTaskStatus } from "./periodic-task";

export type ScheduledTaskOptions<T> = Omit<PeriodicTaskOptions<T>, "lock"> & {
  /** Default: the runtime's lease named after the task. */
  readonly lock?: LeaseLock;
};

/** The periodic tasks a node runs, each under the lease the runtime picks for its mode; their status for health and the REPL. */
export class PeriodicTasks {
  private readonly tasks = new Map<string, PeriodicTask<unknown>>();

  constructor(private readonly leaseLock: (name: string) => LeaseLock) {}

  /** Makes the task and starts it; a task of the same name running on this node is stopped first. */
  schedule<T>(options: ScheduledTaskOptions<T>): PeriodicTask<T> {
    const previous = this.tasks.get(options.name);
    if (previous) void previous.stop();
    const task = new PeriodicTask<T>({ ...options, lock: options.lock ?? this.leaseLock(options.name) });
    this.tasks.set(options.name, task as PeriodicTask<unknown>);
    task.start();
    return task;
  }

  /** Stops the task and forgets it. */
  async unschedule(task: PeriodicTask<unknown> | undefined): Promise<void> {
    if (!task) return;
    if (this.tasks.get(task.name) === task) this.tasks.delete(task.name);
    await task.stop();
  }

  get(name: string): PeriodicTask<unknown> | undefined {
    return this.tasks.get(name);
  }

  status(): PeriodicTaskStatus[] {
    return [...this.tasks.values()].map((task) => task.status());
  }

  async stopAll(): Promise<void> {
    const tasks = [...this.tasks.values()];
    this.tasks.clear();
    await Promise.all(tasks.map((task) => task.stop()));
  }
}
