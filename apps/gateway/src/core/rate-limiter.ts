/**
 * A token bucket: `ratePerS` tokens a second, holding at most `burst`.
 * One per connection, so a client flooding frames cannot starve the others.
 */
export class TokenBucket {
  #tokens: number;
  #last: number;
  readonly #ratePerS: number;
  readonly #burst: number;
  readonly #now: () => number;

  constructor(ratePerS: number, burst: number, now: () => number = Date.now) {
    this.#ratePerS = ratePerS;
    this.#burst = burst;
    this.#tokens = burst;
    this.#now = now;
    this.#last = now();
  }

  /** Takes one token; false when the bucket is empty. */
  take(): boolean {
    const now = this.#now();
    this.#tokens = Math.min(this.#burst, this.#tokens + ((now - this.#last) / 1000) * this.#ratePerS);
    this.#last = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}
