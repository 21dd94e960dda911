import { type IntervalHistogram, monitorEventLoopDelay } from 'node:perf_hooks';

const RESOLUTION_MS = 10;

/** Event-loop delay in milliseconds since the previous read. */
export interface EventLoopLag {
  p50: number;
  p99: number;
  max: number;
}

/**
 * Event-loop delay as the dashboard shows it. Started on first read, so that a
 * gateway built but never watched runs no sampler; each read resets the
 * histogram, so the numbers describe the last interval, not the whole uptime.
 */
export class EventLoopLagMonitor {
  #histogram: IntervalHistogram | undefined;

  read(): EventLoopLag {
    if (!this.#histogram) {
      this.#histogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
      this.#histogram.enable();
      return { p50: 0, p99: 0, max: 0 };
    }
    const h = this.#histogram;
    // Nanoseconds, measured by a timer of RESOLUTION_MS: an idle loop reads the resolution itself, so it is taken off.
    const ms = (ns: number) =>
      Number.isFinite(ns) && h.count > 0 ? Math.max(0, Math.round((ns / 1e6 - RESOLUTION_MS) * 100) / 100) : 0;
    const lag = { p50: ms(h.percentile(50)), p99: ms(h.percentile(99)), max: ms(h.max) };
    h.reset();
    return lag;
  }

  /** Stops the sampler (shutdown). */
  stop(): void {
    this.#histogram?.disable();
    this.#histogram = undefined;
  }
}
