/**
 * A token bucket: `ratePerS` tokens a second, holding at most `burst`.
 * One per connection, so a client flooding frames cannot starve the others.
 */
export class TokenBucket {
  #tokens: number;
  #last: number;
  /** The rate, burst and clock: shared by every bucket of a handler (see {@link TokenBucket.policy}). */
  readonly #policy: BucketPolicy;

  constructor(ratePerS: number | BucketPolicy, burst?: number, now: () => number = Date.now) {
    this.#policy = typeof ratePerS === 'number' ? TokenBucket.policy(ratePerS, burst ?? ratePerS, now) : ratePerS;
    this.#tokens = this.#policy.burst;
    this.#last = this.#policy.now();
  }

  /** One policy for many buckets: a connection's bucket then holds two numbers and a reference. */
  static policy(ratePerS: number, burst: number, now: () => number = Date.now): BucketPolicy {
    return { ratePerS, burst, now };
  }

  /**
   * Whether the bucket has refilled to its burst: it is then the same as a new bucket, and
   * an idle connection need not keep it (see the heartbeat).
   */
  isFull(): boolean {
    const { ratePerS, burst } = this.#policy;
    return this.#tokens + ((this.#policy.now() - this.#last) / 1000) * ratePerS >= burst;
  }

  /** Takes one token; false when the bucket is empty. */
  take(): boolean {
    const { ratePerS, burst } = this.#policy;
    const now = this.#policy.now();
    this.#tokens = Math.min(burst, this.#tokens + ((now - this.#last) / 1000) * ratePerS);
    this.#last = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}

/** The rate (tokens a second), the burst (most tokens held) and the clock of token buckets. */
export interface BucketPolicy {
  readonly ratePerS: number;
  readonly burst: number;
  readonly now: () => number;
}
