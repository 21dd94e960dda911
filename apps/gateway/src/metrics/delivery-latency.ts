import type { Registry } from 'prom-client';

/** Where a delivered event came from: the `source` label of the delivery histograms. */
export const DELIVERY_SOURCES = ['firestore', 'workflow', 'publish', 'task', 'company'] as const;
export type DeliverySource = (typeof DELIVERY_SOURCES)[number];

const FIRESTORE = 0;
const WORKFLOW = 1;
const PUBLISH = 2;
const TASK = 3;
/** A company listener's change (fanned out by the company's holder), timed from its `update_time`. */
const COMPANY = 4;
const ALL_SOURCES = [FIRESTORE, WORKFLOW, PUBLISH, TASK, COMPANY] as const;
/** The listener sources: what the "listener delivery" figures (and `check`) are made of. */
const LISTENER_SOURCES = [FIRESTORE, WORKFLOW, COMPANY] as const;

/**
 * Upper bounds of the delivery histograms, seconds. 0.1 is one of them, so "p99 under
 * 100 ms" is read exactly (the share at or below 0.1 s), not interpolated.
 */
export const DELIVERY_BUCKETS_S = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5, 10, 30,
] as const;
const BOUNDS_MS = DELIVERY_BUCKETS_S.map((s) => s * 1000);
const SLOTS = BOUNDS_MS.length + 1; // the last one: above every bound (+Inf)

/**
 * Below this (ms) a negative latency is the stamps' resolution (whole ms) and the
 * offset's error, and counts as 0; further below, it is clock skew and is counted.
 */
export const SKEW_TOLERANCE_MS = 1;

/** Counts of one histogram, per source: cumulative since start. */
class Counts {
  /** Per source, per bucket (not cumulative: `le` sums are made on export). */
  readonly buckets = DELIVERY_SOURCES.map(() => new Float64Array(SLOTS));
  readonly sum = new Float64Array(DELIVERY_SOURCES.length);
  readonly count = new Float64Array(DELIVERY_SOURCES.length);
  /** Raw values below 0 (beyond the tolerance), clamped to 0 and counted here. */
  readonly skew = new Float64Array(DELIVERY_SOURCES.length);

  add(source: number, ms: number): void {
    let v = ms;
    if (v < 0) {
      if (v < -SKEW_TOLERANCE_MS) this.skew[source] = (this.skew[source] as number) + 1;
      v = 0;
    }
    let i = 0;
    while (i < BOUNDS_MS.length && v > (BOUNDS_MS[i] as number)) i++;
    const buckets = this.buckets[source] as Float64Array;
    buckets[i] = (buckets[i] as number) + 1;
    this.sum[source] = (this.sum[source] as number) + v / 1000;
    this.count[source] = (this.count[source] as number) + 1;
  }
}

/** p50 / p99 (ms) and the sample they are read from. */
export interface LatencySummary {
  count: number;
  p50_ms: number | null;
  p99_ms: number | null;
  /** Share of the sample delivered within 100 ms (what `check` judges). */
  within_100ms: number | null;
}

/** Reads quantile `q` from bucket counts (linear within a bucket, as Prometheus' histogram_quantile does). */
export function quantileOf(buckets: ArrayLike<number>, q: number): number | null {
  let total = 0;
  for (let i = 0; i < buckets.length; i++) total += buckets[i] as number;
  if (total === 0) return null;
  const rank = q * total;
  let seen = 0;
  for (let i = 0; i < buckets.length; i++) {
    const n = buckets[i] as number;
    if (seen + n >= rank && n > 0) {
      const lower = i === 0 ? 0 : (BOUNDS_MS[i - 1] as number);
      // Above the last bound nothing is known but that: report the last bound.
      if (i >= BOUNDS_MS.length) return lower;
      const upper = BOUNDS_MS[i] as number;
      return Math.round((lower + ((upper - lower) * (rank - seen)) / n) * 10) / 10;
    }
    seen += n;
  }
  return BOUNDS_MS.at(-1) as number;
}

function summaryOf(buckets: ArrayLike<number>): LatencySummary {
  let count = 0;
  let within = 0;
  const at100 = BOUNDS_MS.indexOf(100);
  for (let i = 0; i < buckets.length; i++) {
    count += buckets[i] as number;
    if (i <= at100) within += buckets[i] as number;
  }
  return {
    count,
    p50_ms: quantileOf(buckets, 0.5),
    p99_ms: quantileOf(buckets, 0.99),
    within_100ms: count === 0 ? null : within / count,
  };
}

const digit = (text: string, i: number) => text.charCodeAt(i) - 48;
const int = (text: string, from: number, to: number) => {
  let n = 0;
  for (let i = from; i < to; i++) {
    const d = digit(text, i);
    if (d < 0 || d > 9) return Number.NaN;
    n = n * 10 + d;
  }
  return n;
};

/**
 * `YYYY-MM-DDTHH:MM:SS[.ffffff]Z` (the `update_time` the Firestore listeners write) at
 * `from..to` of `text`, in ms since the epoch; NaN for any other form. Reads characters,
 * makes no string.
 */
export function rfc3339Ms(text: string, from: number, to: number): number {
  if (to - from < 20 || text.charCodeAt(to - 1) !== 90 /* Z */) return Number.NaN;
  const base = Date.UTC(
    int(text, from, from + 4),
    int(text, from + 5, from + 7) - 1,
    int(text, from + 8, from + 10),
    int(text, from + 11, from + 13),
    int(text, from + 14, from + 16),
    int(text, from + 17, from + 19),
  );
  if (to - from === 20) return base;
  if (text.charCodeAt(from + 19) !== 46 /* . */) return Number.NaN;
  const digits = to - 1 - (from + 20);
  if (digits < 1 || digits > 9) return Number.NaN;
  return base + int(text, from + 20, to - 1) / 10 ** (digits - 3);
}

/** A tick every 10 s, 6 of them: the recent quantiles cover the last minute. */
export const WINDOW_TICK_MS = 10_000;
const WINDOW_SLOTS = 6;

// Character codes the frame's fixed layout is recognised by (see `prepare`).
const QUOTE = 34;
const COMMA = 44;
const COLON = 58;
const BRACE_CLOSE = 125;
const C_C = 99;
const DOT = 46;
const C_F = 102;
const C_L = 108;
const C_T = 116;
const C_U = 117;
const C_W = 119;
/** `","ts":` after the cursor's closing quote, then the digits. */
const TS_DIGITS = ',"ts":'.length + 1;
/** `,"event":"` before the event type. */
const EVENT_NAME = ',"event":"'.length;
/** From the event type to the value of `data.source`: `listener.change","data":{"source":"`. */
const LISTENER_SOURCE = 'listener.change","data":{"source":"'.length;
/** `YYYY-MM-DDTHH:MM:SS.ffffffZ`, and its `YYYY-MM-DDTHH:MM`. */
const TIME_CHARS = 27;
const MINUTE_CHARS = 16;
/** `,"update_time":"` before the time. */
const UPDATE_TIME_KEY = ',"update_time":"'.length;

/**
 * The end-to-end delivery latency of events, per source, from the event's origin to
 * the moment its frame is written to a socket (docs/operations.md, "Delivery latency").
 * The origin is read from the frame's text, which already carries it: the `ts` Redis
 * (or the embedded bus) stamped at append, or, for a Firestore listener's change, its
 * `update_time`. Reading it compares characters and makes no string or object, so a
 * delivery costs one {@link prepare} per event and one {@link record} per frame.
 */
export class DeliveryLatency {
  readonly #all = new Counts();
  /** Cumulative counts at each of the last {@link WINDOW_SLOTS} ticks, for the recent quantiles. */
  readonly #ring: Float64Array[][] = [];
  /** Redis clock minus this process's clock, ms (see {@link setClockOffset}). */
  #offsetMs = 0;
  #source = PUBLISH;
  #origin = 0;
  /** The `YYYY-MM-DDTHH:MM` of the last update time read, and that minute in ms: most changes share it. */
  #minuteText = '';
  #minuteMs = 0;
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /**
   * The event bus's clock minus this process's (ms), measured with Redis `TIME`: a
   * `ts` stamped by Redis is moved onto this clock before it is compared with it.
   */
  setClockOffset(offsetMs: number): void {
    this.#offsetMs = offsetMs;
  }

  get clockOffsetMs(): number {
    return this.#offsetMs;
  }

  /**
   * Reads the source and origin of one event frame; false when it is not measured (a
   * listener's `initial` change: the document is as old as it is, not late; or a text
   * not in the stored form). Then {@link record} once per frame written.
   *
   * Stored frames have one layout, written by the bus (the Lua append script, the
   * embedded bus) from an event the publisher validated, keys in the protocol's order:
   * `{"type":"event","cursor":"<c>","ts":<ms>,"event":"<type>","data":{...}}`, and a
   * listener change's data ends with `"initial":<bool>,"update_time":"<time>"}`. So a few
   * character codes at known places tell the type, the source and where the times are;
   * `startsWith` on long strings would cost more than the rest of the delivery.
   */
  prepare(text: string): boolean {
    const q = text.indexOf('"', 26); // the cursor's closing quote
    if (q < 0 || text.charCodeAt(q + 1) !== COMMA) return false;
    let i = q + TS_DIGITS;
    let ts = 0;
    for (let d = digit(text, i); d >= 0 && d <= 9; d = digit(text, ++i)) ts = ts * 10 + d;
    if (text.charCodeAt(i) !== COMMA) return false;
    i += EVENT_NAME;
    this.#origin = ts - this.#offsetMs;
    const first = text.charCodeAt(i);
    // task.progress_update, listener.change, registry.updated, session.notice
    if (first === C_T) {
      this.#source = TASK;
      return true;
    }
    this.#source = PUBLISH;
    if (first !== C_L || text.charCodeAt(i + 8) !== DOT || text.charCodeAt(i + 9) !== C_C) return true; // listener.change
    const source = i + LISTENER_SOURCE;
    if (text.charCodeAt(source) === C_F && text.charCodeAt(source + 9) === QUOTE) this.#source = FIRESTORE;
    else if (text.charCodeAt(source) === C_W && text.charCodeAt(source + 8) === QUOTE) this.#source = WORKFLOW;
    else if (text.charCodeAt(source) === C_C && text.charCodeAt(source + 7) === QUOTE) this.#source = COMPANY;
    else return true;
    return this.#listenerOrigin(text);
  }

  /**
   * {@link prepare} of a live event: from its bytes when it has them (the type and `ts` are
   * read there, at the same places), from its text otherwise and for a listener change
   * (whose source and update time are read from the text).
   */
  prepareFrame(event: { readonly text: string; readonly bytes?: Buffer }): boolean {
    const b = event.bytes;
    if (b === undefined) return this.prepare(event.text);
    let q = 26;
    while (q < b.length && b[q] !== QUOTE) q++; // the cursor's closing quote
    if (q >= b.length || b[q + 1] !== COMMA) return false;
    let i = q + TS_DIGITS;
    let ts = 0;
    for (let d = (b[i] ?? 0) - 48; d >= 0 && d <= 9; d = (b[++i] ?? 0) - 48) ts = ts * 10 + d;
    if (b[i] !== COMMA) return false;
    i += EVENT_NAME;
    const first = b[i];
    if (first === C_L && b[i + 8] === DOT && b[i + 9] === C_C) return this.prepare(event.text); // listener.change
    this.#origin = ts - this.#offsetMs;
    this.#source = first === C_T ? TASK : PUBLISH;
    return true;
  }

  /** The change's `update_time`, last in the frame (`...,"update_time":"<time>"}}`); Redis' ts if absent. */
  #listenerOrigin(text: string): boolean {
    const end = text.length - 3; // the time's closing quote
    if (text.charCodeAt(end) !== QUOTE || text.charCodeAt(end + 1) !== BRACE_CLOSE) return true;
    // The listeners write 27 characters (microseconds); any other length is searched for.
    const open =
      text.charCodeAt(end - TIME_CHARS - 1) === QUOTE ? end - TIME_CHARS - 1 : text.lastIndexOf('"', end - 1);
    const key = open + 1 - UPDATE_TIME_KEY; // at the comma before "update_time"
    // ,"update_time":"  (u at +2, t at +9, : at +14)
    if (
      key < 0 ||
      text.charCodeAt(key + 2) !== C_U ||
      text.charCodeAt(key + 9) !== C_T ||
      text.charCodeAt(key + 14) !== COLON
    ) {
      return true;
    }
    // ,"initial":true  just before it: not late, the document was there when the listener attached
    if (text.charCodeAt(key - 4) === C_T && text.charCodeAt(key - 5) === COLON && text.charCodeAt(key - 7) === C_L) {
      return false;
    }
    const at = end - open - 1 === TIME_CHARS ? this.#timeMs(text, open + 1) : rfc3339Ms(text, open + 1, end);
    if (!Number.isNaN(at)) this.#origin = at;
    return true;
  }

  /** `YYYY-MM-DDTHH:MM:SS.ffffffZ` at `from`, in ms; the minute's part from the last one read when it is the same. */
  #timeMs(text: string, from: number): number {
    const minute = this.#minuteText;
    let same = minute.length === MINUTE_CHARS;
    for (let k = 0; same && k < MINUTE_CHARS; k++) same = text.charCodeAt(from + k) === minute.charCodeAt(k);
    if (!same) {
      const ms = rfc3339Ms(text, from, from + TIME_CHARS);
      if (Number.isNaN(ms)) return ms;
      this.#minuteText = text.slice(from, from + MINUTE_CHARS);
      this.#minuteMs = ms - (ms % 60_000);
      return ms;
    }
    const seconds = int(text, from + 17, from + 19);
    const micros = int(text, from + 20, from + 26);
    if (text.charCodeAt(from + 19) !== DOT || text.charCodeAt(from + 26) !== 90 /* Z */) return Number.NaN;
    return this.#minuteMs + seconds * 1000 + micros / 1000;
  }

  /** One frame of the event last {@link prepare}d was written now. */
  record(): void {
    this.#all.add(this.#source, this.#now() - this.#origin);
  }

  /** Records a latency directly (tests, and sources measured elsewhere). */
  observe(source: DeliverySource, ms: number): void {
    this.#all.add(DELIVERY_SOURCES.indexOf(source), ms);
  }

  /**
   * Keeps the counts of now for the recent quantiles; called every
   * {@link WINDOW_TICK_MS} (the gateway's throughput timer).
   */
  tick(): void {
    this.#ring.push(this.#all.buckets.map((b) => Float64Array.from(b)));
    if (this.#ring.length > WINDOW_SLOTS + 1) this.#ring.shift();
  }

  /**
   * p50 / p99 per source, over the listener sources (`firestore`, `workflow`, `company`) and
   * over all: `since: 'start'` from every count, `since: 'window'` from the last
   * minute's (the counts since the oldest tick kept).
   */
  summary(since: 'start' | 'window' = 'window'): Record<DeliverySource | 'listeners' | 'all', LatencySummary> {
    const base = since === 'window' ? this.#ring[0] : undefined;
    const per = DELIVERY_SOURCES.map((_, s) => {
      const now = this.#all.buckets[s] as Float64Array;
      const from = base?.[s];
      return from ? now.map((n, i) => n - (from[i] as number)) : now;
    });
    const sumOf = (sources: readonly number[]) => {
      const out = new Float64Array(SLOTS);
      for (const s of sources) {
        const b = per[s] as Float64Array;
        for (let i = 0; i < SLOTS; i++) out[i] = (out[i] as number) + (b[i] as number);
      }
      return out;
    };
    const out = {
      all: summaryOf(sumOf(ALL_SOURCES)),
      listeners: summaryOf(sumOf(LISTENER_SOURCES)),
    } as Record<DeliverySource | 'listeners' | 'all', LatencySummary>;
    DELIVERY_SOURCES.forEach((name, s) => {
      out[name] = summaryOf(per[s] as Float64Array);
    });
    return out;
  }

  /** Raw values below zero, clamped and counted, per source (since start). */
  skew(): Record<DeliverySource, number> {
    return Object.fromEntries(DELIVERY_SOURCES.map((name, s) => [name, this.#all.skew[s]])) as Record<
      DeliverySource,
      number
    >;
  }

  /** The Prometheus histogram (and skew counter) on `registry`, read at scrape time. */
  register(registry: Registry): void {
    const all = this.#all;
    registerRead(
      registry,
      'livebus_delivery_seconds',
      "Events from their origin (Redis append, or a Firestore change's update time) to their frame written to a socket, by source",
      'histogram',
      () => histogramLines(all, 'livebus_delivery_seconds', {}, ALL_SOURCES),
    );
    registerRead(
      registry,
      'livebus_delivery_clock_skew_total',
      'Deliveries whose origin lay ahead of this clock by more than 1 ms (recorded as 0 s), by source',
      'counter',
      () => DELIVERY_SOURCES.map((source, s) => ({ labels: { source }, value: all.skew[s] as number })),
    );
  }
}

type MetricLine = { metricName?: string; labels: Record<string, string | number>; value: number };

/** The `_bucket`, `_sum` and `_count` lines of a histogram, per source, from plain counts. */
function histogramLines(
  counts: Counts,
  name: string,
  extra: Record<string, string>,
  sources: readonly number[],
): MetricLine[] {
  return sources.flatMap((s) => {
    const base = { ...extra, source: DELIVERY_SOURCES[s] as string };
    const b = counts.buckets[s] as Float64Array;
    let acc = 0;
    return [
      ...BOUNDS_MS.map((_, i) => {
        acc += b[i] as number;
        return { metricName: `${name}_bucket`, labels: { ...base, le: DELIVERY_BUCKETS_S[i] as number }, value: acc };
      }),
      { metricName: `${name}_bucket`, labels: { ...base, le: '+Inf' }, value: counts.count[s] as number },
      { metricName: `${name}_sum`, labels: base, value: counts.sum[s] as number },
      { metricName: `${name}_count`, labels: base, value: counts.count[s] as number },
    ];
  });
}

/**
 * Registers a metric whose lines are made at scrape time: the hot path adds to plain
 * arrays and never calls prom-client (one call per frame would cost more than the rest).
 */
function registerRead(
  registry: Registry,
  name: string,
  help: string,
  type: 'histogram' | 'counter',
  lines: () => MetricLine[],
) {
  registry.registerMetric({
    name,
    help,
    type,
    get: async () => ({ name, help, type, aggregator: 'sum', values: lines() }),
  } as unknown as Parameters<Registry['registerMetric']>[0]);
}

/**
 * At the instance holding a user's Firestore listeners: how late its snapshots arrive,
 * from each change's update time and from the snapshot's read time (both Firestore's
 * clock) to the snapshot reaching this process. Firestore's (or the emulator's) and the
 * network's part of the delivery latency, told apart from the gateway's own.
 */
export class SnapshotDelay {
  readonly #update = new Counts();
  readonly #read = new Counts();

  /** A snapshot of `source` (`firestore` or `workflow`) read at `readMs` arrived at `arrivedAt` with changes updated at `updateMs`. */
  observe(source: DeliverySource, readMs: number, updateMs: readonly number[], arrivedAt: number): void {
    const s = DELIVERY_SOURCES.indexOf(source);
    if (s !== FIRESTORE && s !== WORKFLOW) return;
    this.#read.add(s, arrivedAt - readMs);
    for (const u of updateMs) this.#update.add(s, arrivedAt - u);
  }

  summary(): Record<'update_time' | 'read_time', Record<'firestore' | 'workflow', LatencySummary>> {
    const of = (c: Counts) => ({
      firestore: summaryOf(c.buckets[FIRESTORE] as Float64Array),
      workflow: summaryOf(c.buckets[WORKFLOW] as Float64Array),
    });
    return { update_time: of(this.#update), read_time: of(this.#read) };
  }

  register(registry: Registry): void {
    const name = 'livebus_firestore_snapshot_delay_seconds';
    registerRead(
      registry,
      name,
      'Firestore snapshots with live changes, from each change\'s update time (since="update_time") or the snapshot\'s read time (since="read_time") to their arrival at the instance holding the listener',
      'histogram',
      () => [
        ...histogramLines(this.#update, name, { since: 'update_time' }, [FIRESTORE, WORKFLOW]),
        ...histogramLines(this.#read, name, { since: 'read_time' }, [FIRESTORE, WORKFLOW]),
      ],
    );
    registerRead(
      registry,
      'livebus_firestore_snapshot_clock_skew_total',
      'Snapshot delays whose Firestore time lay ahead of this clock by more than 1 ms (recorded as 0 s), by source',
      'counter',
      () =>
        [FIRESTORE, WORKFLOW].map((s) => ({
          labels: { source: DELIVERY_SOURCES[s] as string },
          value: (this.#update.skew[s] as number) + (this.#read.skew[s] as number),
        })),
    );
  }
}
