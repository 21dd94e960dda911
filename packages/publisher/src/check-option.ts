/** The longest delay a Node timer keeps (about 24.8 days): a longer one fires at once. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** What a numeric option accepts, and what its 0 means (for the message). */
export interface NumberRule {
  min: number;
  max?: number;
  /** Whole numbers only (counts, and milliseconds that reach Redis). */
  integer?: boolean;
  /** What 0 means, when it means something of its own ("no limit"). */
  zero?: string;
}

/**
 * Throws a TypeError naming the option unless `value` is a number the rule accepts. An option
 * given as NaN, a string or a fraction would otherwise surface later and elsewhere: a bound
 * that never binds, a retry loop without a pause, or every publish failing in Redis.
 */
export function checkNumber(where: string, name: string, value: unknown, rule: NumberRule): void {
  if (
    typeof value === 'number' &&
    Number.isFinite(value) &&
    value >= rule.min &&
    value <= (rule.max ?? Number.MAX_SAFE_INTEGER) &&
    (!rule.integer || Number.isInteger(value))
  ) {
    return;
  }
  const range = `${rule.integer ? 'a whole number' : 'a number'} >= ${rule.min}${rule.max === undefined ? '' : ` and <= ${rule.max}`}`;
  throw new TypeError(
    `${where}: ${name} must be ${range}${rule.zero ? ` (0: ${rule.zero})` : ''}, got ${describe(value)}`,
  );
}

/**
 * `retryDelaysMs`: each a timer's delay. Empty (no retries) only with the outbox off: with it on,
 * the last delay is the pace at which a queued event is retried, and none would retry it without a pause.
 */
export function checkDelays(where: string, name: string, value: unknown, outboxOn: boolean): void {
  if (!Array.isArray(value)) {
    throw new TypeError(`${where}: ${name} must be an array of milliseconds, got ${describe(value)}`);
  }
  if (value.length === 0 && outboxOn) {
    throw new TypeError(
      `${where}: ${name} must hold at least one delay while the outbox is on (its last delay paces a queued event's retries); [] (no retries) goes with an outbox of 0 events`,
    );
  }
  for (const [i, delay] of value.entries()) checkNumber(where, `${name}[${i}]`, delay, { min: 0, max: MAX_TIMER_MS });
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(describe).join(', ')}]`;
  return String(value);
}
