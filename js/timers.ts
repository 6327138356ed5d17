/** Timer helpers shared by the drivers. */

/** The longest delay setTimeout honours (2^31 − 1 ms); a longer one fires at once, a busy loop. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** The setTimeout delay for a wake-up at `at` (ms since the epoch), clamped to what timers can hold. */
export function delayUntil(at: number): number {
  const d = at - Date.now();
  if (!Number.isFinite(d) || d <= 0) return d === Infinity ? MAX_TIMER_MS : 0;
  return Math.min(d, MAX_TIMER_MS);
}
