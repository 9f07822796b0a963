import pLimit from "p-limit";

/** A place in a SlotQueue, taken when a job arrives; its work is handed over once it is ready to run. */
export interface SlotTicket {
  /** Runs `work` in this ticket's slot, once the slot is free and every earlier ticket has had its turn. */
  run<T>(work: () => Promise<T>): Promise<T>;
  /** Gives the place up without running anything (a no-op after run). */
  cancel(): void;
}

/**
 * At most `slots` works at once, in the order their tickets were taken, not the order they became
 * ready: a job can take its ticket on arrival, fetch its input, then run, and still keep its turn.
 * Until the first ticket in line hands its work over, it holds its slot.
 */
export class SlotQueue {
  private readonly limit: ReturnType<typeof pLimit>;

  constructor(slots: number) {
    this.limit = pLimit(slots);
  }

  take(): SlotTicket {
    let hand: (work: () => Promise<unknown>) => void = () => undefined;
    const handed = new Promise<() => Promise<unknown>>((resolve) => {
      hand = resolve;
    });
    const outcome = this.limit(async () => (await handed)());
    return {
      run: <T>(work: () => Promise<T>) => {
        hand(work);
        return outcome as Promise<T>;
      },
      cancel: () => {
        hand(async () => undefined);
        // Settles with the work's outcome for run(); here nobody awaits it.
        outcome.catch(() => undefined);
      },
    };
  }
}
