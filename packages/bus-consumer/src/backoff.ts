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

/**
 * Whether a failed attempt moves the backoff on to its next, doubled ceiling. An attempt that never
 * reached a gateway (no HTTP answer: the TCP connection was refused or could not be made, as while a
 * gateway restarts in place and nothing listens yet) cost no gateway anything: within `windowMs` of
 * the loss such an attempt is retried within the first ceiling and does not count, so the clients
 * whose first tries fall into a restart of a few hundred ms are not pushed out to 1, 2 or 4 s. Any
 * attempt that reached a gateway (a refused upgrade, a failed or slow hello), and every attempt
 * after the window, counts. Pure, so it can be tested.
 */
export function growsBackoff(failure: { reachedGateway: boolean; sinceLossMs: number }, windowMs: number): boolean {
  return failure.reachedGateway || !(failure.sinceLossMs < windowMs);
}
