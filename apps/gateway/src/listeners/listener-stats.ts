import type { DeliverySource, SnapshotDelay } from '../metrics/delivery-latency';
import type { WatchedQueryObserver } from './firestore/watched-query';
import { FIRESTORE_OUTAGE } from './firestore-status';
import type { ListenerSourceStats } from './listener-source';
import { ReadMeter } from './read-meter';

const add = (m: Record<string, number>, k: string, n: number) => {
  m[k] = (m[k] ?? 0) + n;
};

/** Collects what the Firestore listeners of a process report, as {@link ListenerSourceStats}. */
export class ListenerStats implements WatchedQueryObserver {
  readonly #meter: ReadMeter;
  readonly #events: Record<string, number> = {};
  readonly #dedup: Record<string, number> = {};
  readonly #errors: Record<string, number> = {};
  /** Listeners failing now, by the kind of their last failure (a kind seen stays, at 0). */
  readonly #failing: Record<string, number> = {};
  readonly #now: () => number;
  #lastErrorAt: number | undefined;
  #restarts = 0;
  readonly #delay: SnapshotDelay | undefined;

  /**
   * @param maxUsers users whose reads are kept for /ws-metrics (least recently reading evicted).
   * @param now clock of {@link ListenerSourceStats.lastErrorAt}, ms since the epoch. @default Date.now
   * @param delay where the snapshots' delays go (/metrics); unset: not recorded
   */
  constructor(maxUsers: number, now: () => number = Date.now, delay?: SnapshotDelay) {
    this.#meter = new ReadMeter({ maxUsers });
    this.#now = now;
    this.#delay = delay;
  }

  reads(userId: string, listener: string, reads: number): void {
    this.#meter.record(userId, listener, reads);
  }
  events(listener: string, count: number): void {
    add(this.#events, listener, count);
  }
  deduplicated(listener: string, count: number): void {
    add(this.#dedup, listener, count);
  }
  error(kind: string): void {
    add(this.#errors, kind, 1);
    if (FIRESTORE_OUTAGE.has(kind)) this.#lastErrorAt = this.#now();
  }
  restart(): void {
    this.#restarts++;
  }
  failing(from: string | undefined, to: string | undefined): void {
    if (from !== undefined) add(this.#failing, from, -1);
    if (to !== undefined) add(this.#failing, to, 1);
  }
  delay(source: string, readMs: number, updateMs: readonly number[], arrivedAt: number): void {
    this.#delay?.observe(source as DeliverySource, readMs, updateMs, arrivedAt);
  }

  /** A snapshot, with `open` listeners counted by the caller. */
  snapshot(open: number): ListenerSourceStats {
    return {
      open,
      reads: this.#meter.snapshot(),
      events: { ...this.#events },
      deduplicated: { ...this.#dedup },
      errors: { ...this.#errors },
      failing: { ...this.#failing },
      restarts: this.#restarts,
      ...(this.#lastErrorAt === undefined ? {} : { lastErrorAt: this.#lastErrorAt }),
    };
  }
}
