import type { LeaseHolder } from '../lease/lease';

/**
 * Port: per user and listener, the read time of the last snapshot whose changes
 * were all published (nanoseconds since the epoch, as a decimal string). A new
 * owner of the user's listeners drops every change at or before it, so a takeover
 * re-delivers nothing. Writes are fenced by the lease: an owner that lost the
 * lease (paused, partitioned) can no longer move the mark.
 */
export interface WatermarkStore {
  readonly kind: 'memory' | 'redis';
  /** Listener name -> watermark for the user (empty when none). */
  get(userId: string): Promise<Record<string, string>>;
  /** Stores a mark; false (nothing written) when `fence` no longer holds the user's lease. */
  set(userId: string, listener: string, mark: string, fence: LeaseHolder): Promise<boolean>;
  /** Forgets the user's marks: their next attach starts with a full initial snapshot. */
  clear(userId: string): Promise<void>;
}

/** A Firestore timestamp as a watermark string (nanoseconds since the epoch). */
export function markOf(t: { seconds: number; nanoseconds: number }): string {
  return (BigInt(t.seconds) * 1_000_000_000n + BigInt(t.nanoseconds)).toString();
}

/** Whether a timestamp is strictly after a mark (no mark: everything is). */
export function isAfter(t: { seconds: number; nanoseconds: number }, mark: string | undefined): boolean {
  return mark === undefined || BigInt(markOf(t)) > BigInt(mark);
}
