import { assertLeaseOwner, type Lease, type LeaseHolder } from './lease';

/** Options of {@link MemoryLease}. */
export interface MemoryLeaseOptions {
  /** Clock (tests). @default Date.now */
  now?: () => number;
}

/**
 * The embedded default: leases in this process's memory (a single instance
 * always wins them). Tokens come from one counter for the whole store, so they
 * increase per key without remembering every key ever leased.
 */
export class MemoryLease implements Lease {
  readonly #leases = new Map<string, LeaseHolder & { expiresAt: number }>();
  readonly #now: () => number;
  #lastToken = 0;

  constructor(options: MemoryLeaseOptions = {}) {
    this.#now = options.now ?? Date.now;
  }

  #live(key: string) {
    const lease = this.#leases.get(key);
    if (lease && lease.expiresAt <= this.#now()) {
      this.#leases.delete(key);
      return undefined;
    }
    return lease;
  }

  async acquire(key: string, owner: string, ttlMs: number): Promise<{ token: number } | undefined> {
    assertLeaseOwner(owner);
    const current = this.#live(key);
    if (current && current.owner !== owner) return undefined;
    const token = ++this.#lastToken;
    this.#leases.set(key, { owner, token, expiresAt: this.#now() + ttlMs });
    return { token };
  }

  async takeOver(key: string, from: LeaseHolder, owner: string, ttlMs: number): Promise<{ token: number } | undefined> {
    assertLeaseOwner(owner);
    const current = this.#live(key);
    if (current && (current.owner !== from.owner || current.token !== from.token)) return undefined;
    const token = ++this.#lastToken;
    this.#leases.set(key, { owner, token, expiresAt: this.#now() + ttlMs });
    return { token };
  }

  async renew(key: string, owner: string, token: number, ttlMs: number): Promise<boolean> {
    const current = this.#live(key);
    if (current?.owner !== owner || current.token !== token) return false;
    current.expiresAt = this.#now() + ttlMs;
    return true;
  }

  async release(key: string, owner: string, token: number): Promise<boolean> {
    const current = this.#live(key);
    if (current?.owner !== owner || current.token !== token) return false;
    this.#leases.delete(key);
    return true;
  }

  async holder(key: string): Promise<LeaseHolder | undefined> {
    const current = this.#live(key);
    return current ? { owner: current.owner, token: current.token } : undefined;
  }
}
