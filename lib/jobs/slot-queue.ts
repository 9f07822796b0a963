import pLimit from "p-limit";

/** A place in a SlotQueue, taken when a job arrives; its work is handed over once it is ready to run. */
export interface SlotTicket {
  /**
   * Runs `work` in this ticket's slot, once the slot is free and every earlier ticket has had its turn.
   * The slot is freed when the work settles, or earlier when it calls `leave` (what remains of it needs
   * no slot); the answer is the work's either way.
   */
  run<T>(work: (leave: () => void) => Promise<T>): Promise<T>;
  /** Gives the place up without running anything (a no-op after run). */
  cancel(): void;
}

type Work = (leave: () => void) => Promise<unknown>;

/** What a cancelled ticket runs. */
const nothing: Work = async () => undefined;

/**
 * At most `slots` works at once, in the order their tickets were taken, not the order they became
 * ready: a job can take its ticket on arrival, fetch its input, then run, and still keep its turn.
 * Until the first ticket in line hands its work over, it holds its slot.
 */
export class SlotQueue {
  private readonly limit: ReturnType<typeof pLimit>;
  /** Moving average of how long works held their slot (ms), starting from a guess. */
  private averageHoldMs: number;

  constructor(slots: number, options: { initialHoldMs?: number } = {}) {
    this.limit = pLimit(slots);
    this.averageHoldMs = options.initialHoldMs ?? 1000;
  }

  /** How long a work has recently held its slot, in ms (a moving average). */
  get recentHoldMs(): number {
    return this.averageHoldMs;
  }

  take(): SlotTicket {
    let hand: (work: Work) => void = () => undefined;
    const handed = new Promise<Work>((resolve) => {
      hand = resolve;
    });
    const outcome = new Promise<unknown>((resolve, reject) => {
      void this.limit(async () => {
        const work = await handed;
        const began = Date.now();
        await new Promise<void>((free) => {
          let held = true;
          const leave = () => {
            if (!held) return;
            held = false;
            if (work !== nothing) this.averageHoldMs = 0.8 * this.averageHoldMs + 0.2 * (Date.now() - began);
            free();
          };
          // The slot is left before the outcome is answered.
          work(leave).finally(leave).then(resolve, reject);
        });
      });
    });
    return {
      run: <T>(work: (leave: () => void) => Promise<T>) => {
        hand(work);
        return outcome as Promise<T>;
      },
      cancel: () => {
        hand(nothing);
        // Settles with the work's outcome for run(); here nobody awaits it.
        outcome.catch(() => undefined);
      },
    };
  }
}
