/** Options of {@link ReadMeter}. */
export interface ReadMeterOptions {
  /** Users tracked at most; the least recently reading is evicted. @default 10_000 */
  maxUsers: number;
  /** Called for every count, with the listener name (a bounded label: names come from LISTENERS_FILE). */
  onRead?: (listener: string, reads: number) => void;
}

/**
 * Firestore document reads billed to each user's listeners. A snapshot costs one
 * read per document it delivers (the first snapshot of a listener: every matching
 * document, at least one read even when empty; later ones: one per change), so
 * this counts what Firestore will bill. Per user behind /ws-metrics (bounded like
 * the disconnect tracker: a Map in least-recently-read order, trimmed on insert);
 * totals per listener on /metrics through `onRead`, never with a user label.
 */
export class ReadMeter {
  readonly #users = new Map<string, number>();
  readonly #totals = new Map<string, number>();
  readonly #o: Required<ReadMeterOptions>;

  constructor(options: ReadMeterOptions) {
    this.#o = { onRead: () => {}, ...options };
  }

  /** Adds `reads` billed to `userId`'s listener `listener`. */
  record(userId: string, listener: string, reads: number): void {
    if (reads <= 0) return;
    const total = (this.#users.get(userId) ?? 0) + reads;
    this.#users.delete(userId);
    this.#users.set(userId, total);
    while (this.#users.size > this.#o.maxUsers) {
      const oldest = this.#users.keys().next().value;
      if (oldest === undefined) break;
      this.#users.delete(oldest);
    }
    this.#totals.set(listener, (this.#totals.get(listener) ?? 0) + reads);
    this.#o.onRead(listener, reads);
  }

  /** The `listener_reads` object of GET /ws-metrics. */
  snapshot(top = 10) {
    return {
      total: [...this.#totals.values()].reduce((a, b) => a + b, 0),
      by_listener: Object.fromEntries(this.#totals),
      users_tracked: this.#users.size,
      top_readers: [...this.#users]
        .sort((a, b) => b[1] - a[1])
        .slice(0, top)
        .map(([uid, reads]) => [uid, reads] as [string, number]),
    };
  }
}
