/** Computes the delay before reconnect attempt `attempt` (0-based). Pure, so it can be injected and tested. */
export type Backoff = (attempt: number) => number;

/**
 * Full-jitter exponential backoff: the ceiling doubles from `minMs` up to
 * `maxMs`, and the delay is uniform in [0, ceiling]. The jitter is applied after
 * clamping, so clients that all reached the cap still spread out instead of
 * reconnecting in lockstep.
 */
export function fullJitterBackoff(minMs: number, maxMs: number, random: () => number = Math.random): Backoff {
  if (!(minMs >= 0) || !(maxMs >= minMs))
    throw new TypeError(`backoff needs 0 <= minMs <= maxMs (got ${minMs}, ${maxMs})`);
  return (attempt) => {
    const ceiling = Math.min(maxMs, minMs * 2 ** Math.min(Math.max(attempt, 0), 30));
    return Math.floor(random() * ceiling);
  };
}
