import { Gauge, type Registry } from 'prom-client';
import type { Logger } from '../logger';
import { DeliveryLatency, type SnapshotDelay, WINDOW_TICK_MS } from './delivery-latency';
import { Throughput } from './throughput';

/** How often the Redis clock is read again (it drifts slowly; a read costs a few round trips). */
export const CLOCK_CHECK_MS = 60_000;

/** Options of {@link DeliveryMeters}. */
export interface DeliveryMetersOptions {
  registry: Registry;
  /** The session hub's running counts: events in from the bus, frames out to sockets. */
  counts: () => { in: number; out: number };
  /** The event bus's clock minus ours, ms (Redis `TIME`); unset: the bus stamps with this process's clock. */
  clockOffset?: () => Promise<number>;
  /** The Firestore listeners' snapshot delays (LISTENERS_FILE set). */
  snapshotDelay?: SnapshotDelay;
  logger: Logger;
}

/**
 * Delivery latency and throughput of one gateway: the histograms of /metrics, the
 * figures of /ws-metrics and the dashboard, and what the fleet heartbeat announces.
 * One timer (a second) samples the throughput and, every 10 s, the latency window; the
 * Redis clock offset is read at start and every minute.
 */
export class DeliveryMeters {
  readonly latency = new DeliveryLatency();
  readonly throughput: Throughput;
  readonly #o: DeliveryMetersOptions;
  #timers: NodeJS.Timeout[] = [];
  #ticks = 0;
  #clockError: string | undefined;

  constructor(options: DeliveryMetersOptions) {
    this.#o = options;
    this.throughput = new Throughput(options.counts);
    this.latency.register(options.registry);
    options.snapshotDelay?.register(options.registry);
    const latency = this.latency;
    new Gauge({
      name: 'livebus_redis_clock_offset_seconds',
      help: 'The Redis clock minus this process clock (Redis TIME), by which the ts of published events is corrected',
      registers: [options.registry],
      collect() {
        this.set(latency.clockOffsetMs / 1000);
      },
    });
  }

  start(): void {
    if (this.#timers.length > 0) return;
    this.#timers.push(setInterval(() => this.tick(), 1_000));
    if (this.#o.clockOffset) {
      void this.readClock();
      this.#timers.push(setInterval(() => void this.readClock(), CLOCK_CHECK_MS));
    }
    for (const t of this.#timers) t.unref();
  }

  stop(): void {
    for (const t of this.#timers) clearInterval(t);
    this.#timers = [];
  }

  /** One second: a throughput sample, and every 10 s one of the latency window. */
  tick(): void {
    this.throughput.tick();
    if (this.#ticks++ % (WINDOW_TICK_MS / 1_000) === 0) this.latency.tick();
  }

  /** Reads the Redis clock offset; Redis away: the last one stays (logged once per outage). */
  async readClock(): Promise<void> {
    try {
      this.latency.setClockOffset(await (this.#o.clockOffset?.() ?? 0));
      this.#clockError = undefined;
    } catch (error) {
      if (this.#clockError === undefined) this.#o.logger.warn('redis_clock_error', { error: String(error) });
      this.#clockError = String(error);
    }
  }

  /** The `delivery` block of /ws-metrics (docs/operations.md). */
  snapshot() {
    return {
      ...this.throughput.rates(),
      recent: this.latency.summary('window'),
      since_start: this.latency.summary('start'),
      clock: { redis_offset_ms: Math.round(this.latency.clockOffsetMs * 10) / 10, skew: this.latency.skew() },
      ...(this.#o.snapshotDelay ? { firestore_snapshot_delay: this.#o.snapshotDelay.summary() } : {}),
    };
  }

  /** What the fleet heartbeat announces of this instance: rates and the last minute's p50 / p99. */
  announced(): {
    eventsInPerS: number;
    eventsOutPerS: number;
    deliveryP50Ms: number | null;
    deliveryP99Ms: number | null;
  } {
    const rates = this.throughput.rates();
    const recent = this.latency.summary('window').all;
    return {
      eventsInPerS: rates.in_per_s,
      eventsOutPerS: rates.out_per_s,
      deliveryP50Ms: recent.p50_ms,
      deliveryP99Ms: recent.p99_ms,
    };
  }
}
