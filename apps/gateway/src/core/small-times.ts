/**
 * Times held for a connection's life, stored small. V8 keeps a number that is not a small
 * integer (a time since the epoch, or any result of arithmetic on one) as a 16-byte number
 * object of its own; ms since the process started, made an integer with `| 0`, stays in the
 * field or array slot itself. Past 2^30 ms (12.4 days) of uptime the value is kept as it is:
 * a number object again, never a wrong time.
 */
export const CLOCK_ORIGIN = Date.now();

/** Node's longest timer: a delay past it (about 24.8 days) fires at once, with a TimeoutOverflowWarning. */
export const MAX_TIMER_MS = 2_147_483_647;

const SMALL = 2 ** 30;

/**
 * `ms` (since the epoch, whole ms) as ms since {@link CLOCK_ORIGIN}, a small integer when it can be
 * one. A fraction of a ms far from the origin (a test's clock near 0) comes back rounded by floating point.
 */
export function toSmallTime(ms: number): number {
  const since = ms - CLOCK_ORIGIN;
  return since > -SMALL && since < SMALL && Number.isInteger(since) ? since | 0 : since;
}

/** The time since the epoch a {@link toSmallTime} value stands for. */
export function fromSmallTime(since: number): number {
  return since + CLOCK_ORIGIN;
}
