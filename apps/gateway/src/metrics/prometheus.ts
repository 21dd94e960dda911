import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { EventBusStats } from '../fleet/bus/event-bus';
import type { GatewayHooks } from '../hooks';

/** Live values read at scrape time. */
export interface GaugeSources {
  connections: () => number;
  sessions: () => number;
  users: () => number;
  listeners: () => number;
  workflowListeners: () => number;
  pendingDetaches: () => number;
  /** The event bus's figures: bytes it retains for resume (0 where Redis holds them), its catch-up reads. */
  bus: () => Pick<
    EventBusStats,
    'retainedBytes' | 'catchUps' | 'heldDropped' | 'catchUpFailures' | 'catchUpsStalled' | 'listenerErrors'
  >;
  /** Event frames written to sessions since start: counted by the fan-out, read at scrape time. */
  eventsDelivered: () => number;
}

/** The gateway's Prometheus metrics (GET /metrics). Labels never carry user ids. */
export interface GatewayMetrics {
  registry: Registry;
  disconnects: Counter<'reason'>;
  detaches: Counter<'outcome'>;
  rpcCalls: Counter<'method' | 'outcome'>;
  rpcSeconds: Histogram<'method'>;
  /** Sessions that opened with a `last_cursor` (a reconnect), by whether they resumed or got `gap`. */
  reconnects: Counter<'outcome'>;
  eventsDelivered: Counter;
  /** Starts default process metrics (event loop lag, memory, CPU); call from listen(). */
  start(): void;
}

/** Builds the metrics on a registry of their own, so several gateways in one process never collide. */
export function createMetrics(sources: GaugeSources): GatewayMetrics {
  const registry = new Registry();
  const gauge = (name: string, help: string, read: () => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(read());
      },
    });
  gauge('livebus_connections', 'Open WebSocket connections, authenticated or not', sources.connections);
  gauge('livebus_sessions', 'Authenticated sessions', sources.sessions);
  gauge('livebus_users', 'Users with at least one session', sources.users);
  gauge('livebus_listeners_attached', 'Users whose listener set is attached', sources.listeners);
  gauge('livebus_workflow_listeners', 'Workflow listeners (WORKFLOW.watch)', sources.workflowListeners);
  gauge('livebus_pending_detaches', 'Users waiting for their detach delay', sources.pendingDetaches);
  gauge(
    'livebus_retained_bytes',
    'Bytes of events retained in this process for resume',
    () => sources.bus().retainedBytes,
  );
  // Counted by the bus in plain numbers, read at scrape time.
  const catchUpsSeen = { subscription: 0, hole: 0 };
  new Counter({
    name: 'livebus_bus_catch_ups_total',
    help: "Reads of a user's stream for live delivery: the subscription came back or was lost (subscription), or a live event skipped offsets (hole)",
    labelNames: ['reason'],
    registers: [registry],
    collect() {
      // Absent for a bus that makes no catch-up reads (the in-memory one).
      const now = sources.bus().catchUps;
      if (!now) return;
      for (const reason of ['subscription', 'hole'] as const) {
        if (now[reason] > catchUpsSeen[reason]) this.inc({ reason }, now[reason] - catchUpsSeen[reason]);
        catchUpsSeen[reason] = now[reason];
      }
    },
  });
  /** A counter of a number the bus keeps since start, read at scrape time (undefined: a bus that keeps none). */
  const busCounter = (name: string, help: string, read: () => number | undefined) => {
    let seen = 0;
    new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        const now = read();
        if (now === undefined) return;
        if (now > seen) this.inc(now - seen);
        seen = now;
      },
    });
  };
  busCounter(
    'livebus_bus_held_dropped_total',
    "Live events a catch-up held and let go (a user's read failed or was slow while its channel kept delivering; its sessions were told gap)",
    () => sources.bus().heldDropped,
  );
  busCounter(
    'livebus_bus_catch_up_failures_total',
    "Tries of a user's catch-up read that failed (Redis away, slow, or refusing the read); each is tried again",
    () => sources.bus().catchUpFailures,
  );
  busCounter(
    'livebus_bus_listener_errors_total',
    "Listeners of a user's events that threw (a bug in the listening code; logged as bus_listener_error at most once per 10 s)",
    () => sources.bus().listenerErrors,
  );
  gauge(
    'livebus_bus_catch_ups_stalled',
    'Users whose catch-up read has kept failing (3 tries, 10 s): their live events are held, their sessions get nothing',
    () => sources.bus().catchUpsStalled ?? 0,
  );
  // Fan-out counts deliveries in a plain number; a prom-client increment per frame cost more than the check before it.
  let deliveredSeen = 0;
  let started = false;
  return {
    registry,
    disconnects: new Counter({
      name: 'livebus_disconnects_total',
      help: 'Closed connections by classified reason',
      labelNames: ['reason'],
      registers: [registry],
    }),
    detaches: new Counter({
      name: 'livebus_detaches_total',
      help: 'Detach timers by outcome (cancelled by a reconnect, or executed)',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    rpcCalls: new Counter({
      name: 'livebus_rpc_calls_total',
      help: 'RPC calls by method and outcome',
      labelNames: ['method', 'outcome'],
      registers: [registry],
    }),
    rpcSeconds: new Histogram({
      name: 'livebus_rpc_duration_seconds',
      help: 'RPC latency by method',
      labelNames: ['method'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
      registers: [registry],
    }),
    reconnects: new Counter({
      name: 'livebus_reconnects_total',
      help: 'Sessions opened with a last_cursor (reconnects), by outcome: resumed, or gap (events were lost to it)',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    eventsDelivered: new Counter({
      name: 'livebus_events_delivered_total',
      help: 'Event frames written to sessions',
      registers: [registry],
      collect() {
        const now = sources.eventsDelivered();
        if (now > deliveredSeen) this.inc(now - deliveredSeen);
        deliveredSeen = now;
      },
    }),
    start() {
      if (started) return;
      started = true;
      collectDefaultMetrics({ register: registry, prefix: 'livebus_' });
    },
  };
}

/**
 * Counts the lifecycle moments that have a Prometheus counter (detach outcomes, disconnects
 * by classified reason, reconnects by outcome) from the
 * gateway's hooks, so the components that emit them know nothing of metrics. Returns the
 * function that unsubscribes.
 */
export function countHooks(
  hooks: GatewayHooks,
  metrics: Pick<GatewayMetrics, 'detaches' | 'disconnects' | 'reconnects'>,
): () => void {
  // One labels object per label value, not one per event (a reconnect storm counts thousands).
  const resumed = { outcome: 'resumed' };
  const gap = { outcome: 'gap' };
  const cancelled = { outcome: 'cancelled' };
  const executed = { outcome: 'executed' };
  const reasons = new Map<string, { reason: string }>();
  const reasonOf = (reason: string) => {
    let labels = reasons.get(reason);
    if (!labels) {
      labels = { reason };
      reasons.set(reason, labels);
    }
    return labels;
  };
  const offs = [
    hooks.on('session.replay', (e) => metrics.reconnects.inc(e.gap ? gap : resumed)),
    hooks.on('session.close', (e) => metrics.disconnects.inc(reasonOf(e.type))),
    hooks.on('detach.cancelled', () => metrics.detaches.inc(cancelled)),
    hooks.on('detach.executing', () => metrics.detaches.inc(executed)),
  ];
  return () => {
    for (const off of offs) off();
  };
}

/** Outcomes of an RPC that are the server's failure; any other error code is the caller's. */
export const SERVER_RPC_ERRORS: readonly string[] = ['internal', 'unavailable', 'timeout'];

/** RPC calls and reconnects since start, for /ws-metrics and `check`. */
export async function rpcAndReconnects(metrics: Pick<GatewayMetrics, 'rpcCalls' | 'reconnects'>) {
  const rpc = { calls: 0, server_errors: 0, caller_errors: 0 };
  for (const v of (await metrics.rpcCalls.get()).values) {
    const outcome = String(v.labels.outcome);
    rpc.calls += v.value;
    if (SERVER_RPC_ERRORS.includes(outcome)) rpc.server_errors += v.value;
    else if (outcome !== 'ok') rpc.caller_errors += v.value;
  }
  const reconnects = { resumed: 0, gap: 0 };
  for (const v of (await metrics.reconnects.get()).values) {
    if (v.labels.outcome === 'gap') reconnects.gap += v.value;
    else reconnects.resumed += v.value;
  }
  return { rpc, reconnects };
}
