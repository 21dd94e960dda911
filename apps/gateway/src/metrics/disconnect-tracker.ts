import type { DisconnectReason } from '@livebus/protocol';

/** Options of {@link DisconnectTracker}. */
export interface DisconnectTrackerOptions {
  /** Users tracked at most; the least recently seen is evicted. @default 10_000 */
  maxUsers: number;
  /** Entries not updated for this long are dropped. @default 86_400_000 (24 h) */
  maxAgeMs?: number;
  /** Window for `frequent_disconnects`. @default 300_000 (5 min) */
  frequentWindowMs?: number;
  /** Disconnects within the window that make a user "frequent". @default 5 */
  frequentThreshold?: number;
  now?: () => number;
}

/** Width of one bucket of {@link DisconnectTracker.history}. */
export const HISTORY_BUCKET_MS = 10_000;
/** Buckets kept: the last 10 minutes. */
const HISTORY_BUCKETS = 60;

/** Disconnects by reason that started within one {@link HISTORY_BUCKET_MS} bucket. */
export interface DisconnectBucket {
  /** Start of the bucket, ms since the epoch. */
  start: number;
  reasons: Partial<Record<DisconnectReason, number>>;
}

interface UserEntry {
  total: number;
  reasons: Partial<Record<DisconnectReason, number>>;
  last: number;
  /** Recent disconnect times, bounded to `frequentThreshold * 4`. */
  recent: number[];
}

/**
 * Per-user disconnect history behind /ws-metrics. Bounded: a Map in
 * least-recently-seen order (re-inserted on every update), trimmed on insert.
 */
export class DisconnectTracker {
  readonly #users = new Map<string, UserEntry>();
  readonly #o: Required<DisconnectTrackerOptions>;
  readonly #totals: Partial<Record<DisconnectReason, number>> = {};
  readonly #buckets: DisconnectBucket[] = [];

  constructor(options: DisconnectTrackerOptions) {
    this.#o = { maxAgeMs: 86_400_000, frequentWindowMs: 300_000, frequentThreshold: 5, now: Date.now, ...options };
  }

  record(userId: string, reason: DisconnectReason): void {
    const now = this.#o.now();
    const entry = this.#users.get(userId) ?? { total: 0, reasons: {}, last: 0, recent: [] };
    this.#users.delete(userId);
    entry.total++;
    entry.reasons[reason] = (entry.reasons[reason] ?? 0) + 1;
    entry.last = now;
    entry.recent.push(now);
    if (entry.recent.length > this.#o.frequentThreshold * 4) entry.recent.shift();
    this.#users.set(userId, entry);
    this.#totals[reason] = (this.#totals[reason] ?? 0) + 1;
    const start = now - (now % HISTORY_BUCKET_MS);
    let bucket = this.#buckets.at(-1);
    if (bucket?.start !== start) {
      bucket = { start, reasons: {} };
      this.#buckets.push(bucket);
      if (this.#buckets.length > HISTORY_BUCKETS) this.#buckets.shift();
    }
    bucket.reasons[reason] = (bucket.reasons[reason] ?? 0) + 1;
    while (this.#users.size > this.#o.maxUsers) {
      const oldest = this.#users.keys().next().value;
      if (oldest === undefined) break;
      this.#users.delete(oldest);
    }
  }

  /** Drops entries older than `maxAgeMs` (the map is in last-seen order, so it stops at the first fresh one). */
  sweep(): void {
    const cutoff = this.#o.now() - this.#o.maxAgeMs;
    for (const [uid, entry] of this.#users) {
      if (entry.last >= cutoff) break;
      this.#users.delete(uid);
    }
  }

  /**
   * Disconnects by reason over the last 10 minutes, oldest first, one entry per
   * {@link HISTORY_BUCKET_MS}; buckets without a disconnect are absent (the dashboard's chart).
   */
  history(): DisconnectBucket[] {
    const cutoff = this.#o.now() - HISTORY_BUCKETS * HISTORY_BUCKET_MS;
    return this.#buckets.filter((b) => b.start > cutoff).map((b) => ({ start: b.start, reasons: { ...b.reasons } }));
  }

  /** The `metrics` object of GET /ws-metrics. */
  snapshot(top = 10) {
    this.sweep();
    const now = this.#o.now();
    const entries = [...this.#users];
    const windowStart = now - this.#o.frequentWindowMs;
    return {
      total_users_tracked: entries.length,
      top_disconnects: entries
        .sort((a, b) => b[1].total - a[1].total)
        .slice(0, top)
        .map(([uid, e]) => [uid, e.total] as [string, number]),
      all_reasons: Object.fromEntries(entries.map(([uid, e]) => [uid, { ...e.reasons }])),
      last_disconnect: Object.fromEntries(entries.map(([uid, e]) => [uid, new Date(e.last).toISOString()])),
      frequent_disconnects: entries
        .map(([uid, e]) => ({ uid, count: e.recent.filter((t) => t >= windowStart).length }))
        .filter((f) => f.count >= this.#o.frequentThreshold)
        .sort((a, b) => b.count - a.count),
      reasons_total: { ...this.#totals },
    };
  }
}
