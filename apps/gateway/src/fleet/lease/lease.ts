/** Who holds a lease, and the fencing token of that acquisition. */
export interface LeaseHolder {
  owner: string;
  token: number;
}

/**
 * Port: one owner per key at a time, with expiry, renewal and fencing tokens
 * (first use: each user's Firestore listeners attached once in the fleet, keyed
 * by user id). Each acquisition gets its own token, and tokens strictly increase
 * per key, so a resource that remembers the highest token it saw can refuse a stale holder
 * that woke up after its lease expired. Implementations:
 * {@link import('./memory-lease').MemoryLease} and
 * {@link import('./redis-lease').RedisLease}; both pass lease.contract.ts.
 */
export interface Lease {
  /**
   * Takes the lease for `ttlMs` if it is free (or expired), or held under the same
   * `owner` name, with a new fencing token every time: a process restarted with its
   * predecessor's name (same INSTANCE_ID) fences out whatever the dead one left
   * behind, and an acquire retried after a lost reply merely supersedes a token
   * nobody received.
   * @returns the new fencing token, or undefined when another owner holds it.
   */
  acquire(key: string, owner: string, ttlMs: number): Promise<{ token: number } | undefined>;
  /**
   * Takes the lease from `from` (a holder known dead) for `ttlMs`, with a new token: only
   * while `from` still holds it exactly (same owner and token) or it is free. Never from
   * anyone else: a survivor that raced another one, or a holder that came back and took it
   * anew, keeps it. @returns the new token, or undefined
   */
  takeOver(key: string, from: LeaseHolder, owner: string, ttlMs: number): Promise<{ token: number } | undefined>;
  /** Extends the lease to `ttlMs` from now; false when `owner`/`token` no longer hold it (expired, taken over). */
  renew(key: string, owner: string, token: number, ttlMs: number): Promise<boolean>;
  /** Frees the lease now; false when `owner`/`token` no longer hold it (nothing is changed then). */
  release(key: string, owner: string, token: number): Promise<boolean>;
  /** The current holder, or undefined when the lease is free or expired. */
  holder(key: string): Promise<LeaseHolder | undefined>;
}

/** Thrown for an owner that names nobody (the empty string). */
export class LeaseOwnerError extends Error {
  override readonly name = 'LeaseOwnerError';
}

/** @internal Checks an owner name before it is stored: any non-empty text. */
export function assertLeaseOwner(owner: string): void {
  if (owner.length === 0) throw new LeaseOwnerError('lease owner must be non-empty');
}
