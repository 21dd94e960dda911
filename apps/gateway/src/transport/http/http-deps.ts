import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AppEvent } from '@livebus/protocol';
import type { Authenticator } from '../../auth/authenticator';
import type { GatewayConfig } from '../../config';
import type { EventBusStats, Publication, StoredEvent } from '../../fleet/bus/event-bus';
import type { InstanceInfo } from '../../fleet/presence/presence';
import type { RegistryStore } from '../../fleet/registry/registry-store';
import type { CompanyStatsSnapshot } from '../../listeners/company/company-stats';
import type { ListenerSourceStats } from '../../listeners/listener-source';
import type { ListenerCounters } from '../../listeners/listeners-manager';
import type { Logger } from '../../logger';
import type { DeliveryMeters } from '../../metrics/delivery-meters';
import type { DisconnectTracker } from '../../metrics/disconnect-tracker';
import type { GatewayMetrics } from '../../metrics/prometheus';
import type { ThroughputSample } from '../../metrics/throughput';
import type { Dispatch } from '../../rpc/dispatcher';

// The types the HTTP routes share, here rather than in gateway.ts so that nothing under
// transport/http imports back up into the module that wires it.

/** The `delivery` block of /ws-metrics. */
export type DeliverySnapshot = ReturnType<DeliveryMeters['snapshot']>;

/** Health of an external dependency as reported on /healthz. */
export type DependencyStatus = 'ok' | 'down' | 'disabled';

/** Counters shown on /healthz and /debug. */
export interface GatewayStats {
  connections: number;
  sessions: number;
  users: number;
  listeners: number;
  workflowListeners: number;
  pendingDetaches: number;
  detachCancelled: number;
  detachExecuted: number;
  /** Upgrades answered `503` + `Retry-After` by admission control since start. */
  upgradesRefused: number;
  draining: boolean;
}

/** What the HTTP endpoints read from the gateway. */
export interface HttpDeps {
  config: GatewayConfig;
  logger: Logger;
  auth: Authenticator;
  dispatch: Dispatch;
  metrics: GatewayMetrics;
  tracker: DisconnectTracker;
  /** Delivery latency and events in/out (the `delivery` block of /ws-metrics and the dashboard). */
  delivery: () => DeliverySnapshot;
  /** Events in and out per second over the last 2 minutes (the dashboard's sparkline). */
  throughputHistory: () => ThroughputSample[];
  stats: () => GatewayStats;
  listenerCounters: () => ListenerCounters;
  /** Counters of the Firestore listeners (reads per user for /ws-metrics); undefined without listeners. */
  listenerStats?: () => ListenerSourceStats | undefined;
  redisStatus: () => DependencyStatus;
  registry: RegistryStore;
  publish: (userId: string, event: AppEvent) => Promise<StoredEvent>;
  publishMany: (items: readonly Publication[]) => Promise<StoredEvent[]>;
  busStats: () => EventBusStats;
  isDraining: () => boolean;
  debugSessions: () => unknown;
  startedAt: number;
  version: string;
  /** Live instances of the fleet (this one alone without Redis). */
  clusterInstances: () => Promise<InstanceInfo[]>;
  /** Firestore health (dashboard, /healthz): `down` for an outage only; unset: `disabled`. */
  firestoreStatus?: () => DependencyStatus;
  /** Listeners failing now on a query Firestore refuses (/healthz `firestore_refused`); unset: no listeners. */
  firestoreRefused?: () => number;
  /** Firestore document reads since start (dashboard); unset: not measured. */
  firestoreReads?: () => number;
  /** Company listeners (LISTENERS_FILE `company`): /ws-metrics and the dashboard; unset: none. */
  companyStats?: () => CompanyStatsSnapshot;
  /** Tasks waiting in the queue (dashboard); unset: no task queue. */
  taskQueueDepth?: () => Promise<number>;
  /** The `tasks` block of /healthz (enabled, queue kind, workers seen). */
  taskHealth?: () => unknown;
}

/** One endpoint; what it throws is answered by the handler (an {@link HttpError} as is, else a 500). */
export type Route = (req: IncomingMessage, res: ServerResponse) => Promise<void> | void;

/** A route group: `"METHOD /path"` -> its route. */
export type Routes = Record<string, Route>;
