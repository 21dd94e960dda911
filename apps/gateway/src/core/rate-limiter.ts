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

/**
 * One token bucket per key (a user id), for calls that come without a connection to hold
 * the bucket (`POST /rpc`). Buckets that refilled are the same as new ones and are dropped
 * when the map grows past `maxKeys` (then again only once it has doubled: a sweep per new key
 * would cost the whole map each time).
 */
export class KeyedBuckets {
  readonly #policy: BucketPolicy;
  readonly #buckets = new Map<string, TokenBucket>();
  readonly #maxKeys: number;
  #sweepAt: number;

  constructor(policy: BucketPolicy, maxKeys = 10_000) {
    this.#policy = policy;
    this.#maxKeys = maxKeys;
    this.#sweepAt = maxKeys;
  }

  /** Takes one token of `key`'s bucket; false when it is empty. */
  take(key: string): boolean {
    let bucket = this.#buckets.get(key);
    if (bucket === undefined) {
      if (this.#buckets.size >= this.#sweepAt) this.#sweep();
      bucket = new TokenBucket(this.#policy);
      this.#buckets.set(key, bucket);
    }
    return bucket.take();
  }

  /** Keys holding a bucket now (refilled ones may be among them until a sweep). */
  get size(): number {
    return this.#buckets.size;
  }

  #sweep(): void {
    for (const [key, bucket] of this.#buckets) if (bucket.isFull()) this.#buckets.delete(key);
    this.#sweepAt = Math.max(this.#maxKeys, this.#buckets.size * 2);
  }
}
