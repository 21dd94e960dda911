/** Events in and out over one second. */
export interface ThroughputSample {
  /** Start of the second, ms since the epoch. */
  at: number;
  /** Events this instance's sessions were sent by the bus (one per event, whatever the user's session count). */
  in: number;
  /** Event frames written to sockets (one per session; replays included). */
  out: number;
}

/** Seconds of history kept (the dashboard's sparkline). */
export const THROUGHPUT_HISTORY_S = 120;
/** Rates are averaged over this many seconds. */
const RATE_WINDOW_S = 10;

/**
 * Events in and out per second, from the session hub's two running counts sampled once
 * a second ({@link tick}): the rates of /ws-metrics, the dashboard and the fleet view.
 */
export class Throughput {
  readonly #read: () => { in: number; out: number };
  readonly #now: () => number;
  readonly #history: ThroughputSample[] = [];
  #last: { in: number; out: number } | undefined;

  constructor(read: () => { in: number; out: number }, now: () => number = Date.now) {
    this.#read = read;
    this.#now = now;
  }

  /** Takes one sample: what came in and went out since the previous one. */
  tick(): void {
    const now = this.#read();
    const last = this.#last;
    this.#last = { in: now.in, out: now.out };
    if (!last) return;
    const at = this.#now();
    this.#history.push({ at: at - (at % 1000), in: now.in - last.in, out: now.out - last.out });
    if (this.#history.length > THROUGHPUT_HISTORY_S) this.#history.shift();
  }

  /** Events in and out per second over the last 10 samples (0 before the first). */
  rates(): { in_per_s: number; out_per_s: number } {
    const recent = this.#history.slice(-RATE_WINDOW_S);
    const n = Math.max(1, recent.length);
    const sum = (k: 'in' | 'out') => recent.reduce((a, s) => a + s[k], 0);
    return { in_per_s: Math.round((sum('in') / n) * 10) / 10, out_per_s: Math.round((sum('out') / n) * 10) / 10 };
  }

  /** The last {@link THROUGHPUT_HISTORY_S} samples, oldest first. */
  history(): ThroughputSample[] {
    return this.#history.map((s) => ({ ...s }));
  }
}
