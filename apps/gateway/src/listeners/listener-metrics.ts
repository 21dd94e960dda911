import { Counter, Gauge, type Registry } from 'prom-client';
import type { ListenerSourceStats } from './listener-source';

/**
 * Registers the Firestore listener metrics on `registry`, read from the sources'
 * counters at scrape time. Labels are listener names (from LISTENERS_FILE) and
 * failure kinds: bounded, and never a user id (per-user reads are on /ws-metrics).
 */
export function registerListenerMetrics(registry: Registry, read: () => ListenerSourceStats | undefined): void {
  const counter = (
    name: string,
    help: string,
    label: string,
    pick: (s: ListenerSourceStats) => Record<string, number>,
  ) =>
    new Counter({
      name,
      help,
      labelNames: [label],
      registers: [registry],
      collect() {
        const stats = read();
        if (!stats) return;
        this.reset();
        for (const [value, n] of Object.entries(pick(stats))) this.inc({ [label]: value }, n);
      },
    });
  counter(
    'livebus_listener_reads_total',
    'Firestore document reads billed to listeners (snapshot sizes), by listener',
    'listener',
    (s) => s.reads.by_listener,
  );
  counter(
    'livebus_listener_events_total',
    'listener.change events published, by listener',
    'listener',
    (s) => s.events,
  );
  counter(
    'livebus_listener_deduplicated_total',
    'Changes dropped after a takeover or re-open because they were already delivered, by listener',
    'listener',
    (s) => s.deduplicated,
  );
  counter(
    'livebus_listener_errors_total',
    'Listener failures (retried with backoff), by kind',
    'kind',
    (s) => s.errors,
  );
  new Counter({
    name: 'livebus_listener_restarts_total',
    help: 'Listeners re-opened after a failure or a stall',
    registers: [registry],
    collect() {
      const stats = read();
      if (!stats) return;
      this.reset();
      this.inc(stats.restarts);
    },
  });
  new Gauge({
    name: 'livebus_listener_queries_failing',
    help: 'Firestore listeners failing now (from a failure until a snapshot is published again), by the kind of their last failure',
    labelNames: ['kind'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [kind, n] of Object.entries(read()?.failing ?? {})) this.set({ kind }, n);
    },
  });
  new Gauge({
    name: 'livebus_listener_queries_open',
    help: 'Firestore listeners (queries) open in this process',
    registers: [registry],
    collect() {
      this.set(read()?.open ?? 0);
    },
  });
}
