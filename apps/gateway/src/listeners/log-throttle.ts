/** Lines of one kind that an outage repeats per user: at most one per this long (the others at debug). */
export const REPEATED_LOG_MS = 10_000;

/** Which lines of one kind go out: the first, then one per {@link REPEATED_LOG_MS}. */
export class LogThrottle {
  #loggedAt = Number.NEGATIVE_INFINITY;
  #suppressed = 0;

  /** How many were left out since the last line, to log this one with; undefined: leave this one out too. */
  take(now: number): number | undefined {
    if (now - this.#loggedAt < REPEATED_LOG_MS) {
      this.#suppressed++;
      return undefined;
    }
    const suppressed = this.#suppressed;
    this.#loggedAt = now;
    this.#suppressed = 0;
    return suppressed;
  }
}
