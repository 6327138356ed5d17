/** Timer helpers shared by the drivers. */

/** The longest delay setTimeout honours (2^31 − 1 ms); a longer one fires at once, a busy loop. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** The setTimeout delay for a wake-up at `at` (ms since the epoch), clamped to what timers can hold. */
export function delayUntil(at: number): number {
  const d = at - Date.now();
  if (!Number.isFinite(d) || d <= 0) return d === Infinity ? MAX_TIMER_MS : 0;
  return Math.min(d, MAX_TIMER_MS);
}

/** One pending wake-up at a time: the earliest asked for wins; `cancel` drops it. */
export class WakeTimer {
  private timer: ReturnType<typeof setTimeout> | undefined;
  private at = Infinity;

  /** Runs `fire` at `at` (ms since the epoch) unless an earlier wake-up is already armed. */
  arm(at: number, fire: () => void): void {
    if (at >= this.at) return;
    if (this.timer) clearTimeout(this.timer);
    this.at = at;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.at = Infinity;
      fire();
    }, delayUntil(at));
  }

  cancel(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.at = Infinity;
  }
}

/** A retry after a transient failure, backing off from 1 s to 30 s; a success resets it. */
export class RetryTimer {
  private timer: ReturnType<typeof setTimeout> | undefined;
  private delay = 1000;

  /** Runs `fire` after the current back-off, unless a retry is already scheduled. */
  schedule(fire: () => void): void {
    if (this.timer) return;
    const delay = this.delay;
    this.delay = Math.min(delay * 2, 30_000);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      fire();
    }, delay);
  }

  reset(): void {
    this.delay = 1000;
  }

  cancel(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
