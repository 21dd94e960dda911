// The composition root: the one place that decides, from the configuration, which
// adapter backs each port (Redis, Firestore, BullMQ or the embedded in-memory ones)
// and opens their clients. createGateway (gateway.ts) only wires what it is given.
import { closeRedis, openRedis, type RedisClient } from '@livebus/publisher/redis';
import type { App } from 'firebase-admin/app';
import type { Authenticator } from './auth/authenticator';
import { authenticatorFor } from './auth/authenticator-for';
import type { GatewayConfig } from './config';
import type { EventBus } from './fleet/bus/event-bus';
import { MemoryEventBus } from './fleet/bus/memory-event-bus';
import { RedisEventBus } from './fleet/bus/redis-event-bus';
import type { DetachDecision } from './fleet/detach/detach-decision';
import { embeddedDetachDecision } from './fleet/detach/memory-detach-decision';
import { RedisDetachDecision } from './fleet/detach/redis-detach-decision';
import { type InstanceChannel, LocalInstanceChannel } from './fleet/instances/instance-channel';
import type { InstanceLiveness } from './fleet/instances/instance-liveness';
import { RedisInstanceChannel } from './fleet/instances/redis-instance-channel';
import { RedisInstanceLiveness } from './fleet/instances/redis-instance-liveness';
import { SharedLiveness } from './fleet/instances/shared-liveness';
import type { Lease } from './fleet/lease/lease';
import { MemoryLease } from './fleet/lease/memory-lease';
import { MemoryPresence } from './fleet/presence/memory-presence';
import type { Presence } from './fleet/presence/presence';
import { RedisPresence } from './fleet/presence/redis-presence';
import { MemoryRegistryStore } from './fleet/registry/memory-registry-store';
import { RedisRegistryStore } from './fleet/registry/redis-registry-store';
import type { RegistryStore } from './fleet/registry/registry-store';
import { type GatewayHookEvents, type GatewayHooks, Hooks } from './hooks';
import type { CompanyPorts } from './listeners/company/build-company';
import type { buildListeners } from './listeners/firestore/build-listeners';
import { type HoldBeforeMarkOptions, holdBeforeMark } from './listeners/hold-before-mark';
import type { ListenerSource, ListenerSourceStats, WorkflowSource } from './listeners/listener-source';
import type { WatermarkStore } from './listeners/watermark-store';
import { MemoryWorkflowWatchStore, type WorkflowWatchStore } from './listeners/workflow-watch-store';
import { createLogger, type Logger } from './logger';
import { SnapshotDelay } from './metrics/delivery-latency';
import { redisClockOffset } from './redis/redis-clock';
import type { RedisProbe } from './redis/redis-probe';
import { outboxLogger, watchRedis } from './redis/redis-status-log';
import type { buildRedisTaskQueue } from './tasks/build-task-queue';
import type { TaskQueue } from './tasks/task-queue';
import type { DependencyStatus } from './transport/http/http-deps';

/**
 * The adapters and collaborators a gateway runs on. {@link composePorts} builds them all
 * from the configuration; `createGateway` fills what is left unset with the embedded
 * in-memory ones ({@link resolvePorts}), so a test passes only the ones it replaces.
 */
export interface GatewayPorts {
  logger?: Logger;
  /** Where lifecycle events go. @default a fresh emitter, exposed as `Gateway.hooks` */
  hooks?: GatewayHooks;
  registry?: RegistryStore;
  bus?: EventBus;
  auth?: Authenticator;
  sources?: ListenerSource[];
  /**
   * Counters of every Firestore listener of the process (user, workflow and company listeners
   * share them): /healthz's `firestore`, /metrics, /ws-metrics, the dashboard. @default the
   * sources' own
   */
  listenerStats?: () => ListenerSourceStats;
  /** Who holds each user's listeners in the fleet. @default a memory lease (one instance) */
  lease?: Lease;
  /** Documents watched with WORKFLOW.watch; unset: watches are only counted. */
  workflowSource?: WorkflowSource;
  /** The fleet's set of jobs each user watches. @default in memory (one instance) */
  workflowWatches?: WorkflowWatchStore;
  /** Company listeners (LISTENERS_FILE `company`, listeners/company/); unset: none. */
  companies?: CompanyPorts;
  /** Redis health as seen by its client; `disabled` when the gateway runs without Redis. */
  redisStatus?: () => DependencyStatus;
  /** The fleet's directory of sessions. @default in memory: this process is the whole fleet */
  presence?: Presence;
  /**
   * Decides atomically, in the store shared by the fleet, whether a user whose detach
   * delay ran out is gone everywhere, and cleans the registry if so. Required with a
   * `presence` or `registry` of your own. @default the embedded decision over the
   * embedded presence and registry (one instance)
   */
  detachDecision?: DetachDecision;
  /** Orders to other instances (close a replaced session). @default none: one instance */
  channel?: InstanceChannel;
  /**
   * The instances' liveness proofs, for listener failover within LISTENER_FAILOVER_MS.
   * @default none: one instance (a holder's users are taken over when their leases expire)
   */
  liveness?: InstanceLiveness;
  /** Where `TASK.*` jobs go (BullMQ, from {@link composePorts}); unset: the embedded in-process queue. */
  tasks?: TaskQueue;
  /**
   * The clock that stamps published events (Redis `TIME`) minus this process's, in ms:
   * the delivery latency corrects their `ts` by it. @default none: the embedded bus
   * stamps with this process's clock
   */
  clockOffset?: () => Promise<number>;
  /** Where the Firestore listeners record their snapshots' delays (set with LISTENERS_FILE). */
  snapshotDelay?: SnapshotDelay;
  /**
   * One cheap Firestore read, made before the main port listens so the first user does not
   * wait for the client's channel to open (set with LISTENERS_FILE). @default none
   */
  firestoreWarmUp?: () => Promise<unknown>;
  /** Event-loop lag (ms) seen by admission control. @default measured by a timer (tests inject it) */
  eventLoopLagMs?: () => number;
  /** Called last during shutdown (close Redis clients, Firebase apps). */
  onClose?: () => Promise<void>;
  version?: string;
}

/** The ports every gateway has, whatever the backend: what {@link resolvePorts} guarantees. */
export type ResolvedPorts = GatewayPorts &
  Required<
    Pick<
      GatewayPorts,
      | 'logger'
      | 'hooks'
      | 'registry'
      | 'bus'
      | 'auth'
      | 'presence'
      | 'detachDecision'
      | 'channel'
      | 'lease'
      | 'workflowWatches'
      | 'redisStatus'
      | 'version'
    >
  >;

/** The embedded in-memory adapters: one process is the whole fleet. */
export interface MemoryPorts {
  registry: RegistryStore;
  bus: EventBus;
  presence: Presence;
  channel: InstanceChannel;
  lease: Lease;
  workflowWatches: WorkflowWatchStore;
}

/**
 * The in-memory adapters for a gateway without Redis. No I/O and no timer until used.
 * `only` builds just the named ones (the others are left out). The presence prunes the
 * registry's entries of sessions that left, DETACH_DELAY_MS after they did, when that
 * registry is the embedded one: built here, or `given`.
 */
export function memoryPorts<K extends keyof MemoryPorts>(
  config: GatewayConfig,
  only?: readonly K[],
  given: { registry?: RegistryStore | undefined } = {},
): Pick<MemoryPorts, K> {
  let registry = given.registry;
  const builders: { [P in keyof MemoryPorts]: () => MemoryPorts[P] } = {
    registry: () => {
      registry = new MemoryRegistryStore();
      return registry;
    },
    bus: () =>
      new MemoryEventBus({
        retentionEvents: config.streamRetentionEvents,
        retentionMs: config.streamRetentionMs,
        retentionBytes: config.streamRetentionBytes,
      }),
    presence: () =>
      new MemoryPresence({
        instanceTtlMs: config.instanceTtlMs,
        leaveGraceMs: config.detachDelayMs,
        ...(registry instanceof MemoryRegistryStore ? { registry } : {}),
      }),
    channel: () => new LocalInstanceChannel(),
    lease: () => new MemoryLease(),
    workflowWatches: () => new MemoryWorkflowWatchStore(),
  };
  // In the builders' order, whatever `only`'s: the registry before the presence that prunes it.
  const names = (Object.keys(builders) as K[]).filter((name) => !only || only.includes(name));
  return Object.fromEntries(names.map((name) => [name, builders[name]()])) as Pick<MemoryPorts, K>;
}

/**
 * The given ports with every unset one filled: the embedded in-memory adapters, the
 * authenticator AUTH_MODE names, a logger from LOG_LEVEL/LOG_FORMAT. What createGateway
 * runs on; builds nothing that was given.
 */
export function resolvePorts(config: GatewayConfig, given: GatewayPorts): ResolvedPorts {
  const missing = (['registry', 'bus', 'presence', 'channel', 'lease', 'workflowWatches'] as const).filter(
    (name) => given[name] === undefined,
  );
  const memory: Partial<MemoryPorts> = memoryPorts(config, missing, { registry: given.registry });
  const registry = given.registry ?? (memory.registry as RegistryStore);
  const presence = given.presence ?? (memory.presence as Presence);
  return {
    ...given,
    // One proof per gateway, however many listener managers prove it (user and company listeners).
    ...(given.liveness ? { liveness: new SharedLiveness(given.liveness) } : {}),
    logger:
      given.logger ?? createLogger({ level: config.logLevel, format: config.logFormat, instanceId: config.instanceId }),
    hooks: given.hooks ?? new Hooks<GatewayHookEvents>(),
    registry,
    bus: given.bus ?? (memory.bus as EventBus),
    presence,
    detachDecision: given.detachDecision ?? embeddedDetachDecision(presence, registry),
    channel: given.channel ?? (memory.channel as InstanceChannel),
    lease: given.lease ?? (memory.lease as Lease),
    workflowWatches: given.workflowWatches ?? (memory.workflowWatches as WorkflowWatchStore),
    auth: given.auth ?? authenticatorFor(config),
    redisStatus: given.redisStatus ?? (() => 'disabled'),
    version: given.version ?? '0.0.0',
  };
}

/**
 * Every port the configuration asks for, its clients open: Redis (registry, event bus,
 * presence, detach decision, instance channel; a Cluster with REDIS_CLUSTER) when
 * REDIS_URL is set, the embedded in-memory adapters otherwise; the authenticator of
 * AUTH_MODE (with its firebase-admin app); the Firestore listeners of LISTENERS_FILE;
 * the BullMQ task queue when tasks are on with Redis. The heavy modules (firebase-admin,
 * @google-cloud/firestore, bullmq: most of the CLI's start-up time, docs/benchmarks.md)
 * are imported only when the configuration uses them. `onClose` closes what was opened.
 */
export async function composePorts(
  config: GatewayConfig,
  logger: Logger,
  testHooks: ComposeTestHooks = {},
): Promise<GatewayPorts> {
  const [listenersModule, tasksModule] = await Promise.all([
    config.listeners ? import('./listeners/firestore/build-listeners') : undefined,
    config.redisUrl && config.tasksEnabled ? import('./tasks/build-task-queue') : undefined,
  ]);
  return assemblePorts(
    config,
    logger,
    {
      ...(listenersModule ? { buildListeners: listenersModule.buildListeners } : {}),
      ...(tasksModule ? { buildRedisTaskQueue: tasksModule.buildRedisTaskQueue } : {}),
    },
    testHooks,
  );
}

/**
 * Test-only interference with the composed ports, set by main.ts from `LIVEBUS_TEST_*`
 * variables (docs/configuration.md, "Test-only variables"); empty in production.
 */
export interface ComposeTestHooks {
  /** Never store the mark of the snapshot that changed this document (see listeners/hold-before-mark.ts). */
  holdBeforeMark?: HoldBeforeMarkOptions;
}

/** The builders of the heavy optional parts, once {@link composePorts} imported them. */
interface HeavyBuilders {
  buildListeners?: typeof buildListeners;
  buildRedisTaskQueue?: typeof buildRedisTaskQueue;
}

type Closer = () => Promise<unknown>;

function assemblePorts(
  config: GatewayConfig,
  logger: Logger,
  builders: HeavyBuilders,
  testHooks: ComposeTestHooks,
): GatewayPorts {
  const closers: Closer[] = [];
  const opened = config.redisUrl ? openGatewayRedis(config, logger, config.redisUrl, closers) : undefined;
  const redis = opened?.redis;
  const stores = opened
    ? redisPorts(config, logger, opened)
    : memoryPorts(config, ['registry', 'bus', 'presence', 'channel']);
  const auth = authenticatorFor(config, {
    firebaseApp: firebaseAppFor(config, logger, closers),
    // The keys held keep verifying; the operator hears that the provider cannot be reached.
    onJwksRefreshError: (error) => logger.warn('jwks_refresh_error', { error }),
  });
  // One Firestore client per process, on a Firebase app of its own (the authenticator's is
  // loaded lazily and never talks to Firestore).
  const hold = testHooks.holdBeforeMark;
  const snapshotDelay = builders.buildListeners ? new SnapshotDelay() : undefined;
  const listeners = builders.buildListeners?.(config, logger, {
    ...(redis ? { redis } : {}),
    ...(stores.bus ? { bus: stores.bus } : {}),
    ...(snapshotDelay ? { snapshotDelay } : {}),
    ...(hold ? { wrapMarks: (store: WatermarkStore) => holdBeforeMark(store, hold) } : {}),
  });
  if (listeners) closers.push(() => listeners.close());
  // TASK.*: a BullMQ queue on Redis when enabled; see tasks/ and docs/tasks.md.
  const tasks = builders.buildRedisTaskQueue?.(config);
  if (tasks) closers.push(tasks.close);
  return {
    logger,
    ...stores,
    auth,
    ...(tasks ? { tasks: tasks.queue } : {}),
    ...(listeners
      ? {
          sources: listeners.sources,
          listenerStats: listeners.stats,
          lease: listeners.lease,
          workflowWatches: listeners.workflowWatches,
          ...(listeners.workflowSource ? { workflowSource: listeners.workflowSource } : {}),
          ...(listeners.company ? { companies: listeners.company } : {}),
          firestoreWarmUp: listeners.warmUp,
        }
      : memoryPorts(config, ['lease', 'workflowWatches'])),
    redisStatus: redis ? () => (redis.status === 'ready' && opened?.probe.answering ? 'ok' : 'down') : () => 'disabled',
    ...(redis ? { clockOffset: async () => (await redisClockOffset(redis)).offsetMs } : {}),
    ...(snapshotDelay ? { snapshotDelay } : {}),
    onClose: async () => {
      await Promise.allSettled(closers.map((c) => c()));
    },
  };
}

/**
 * The gateway's Redis client (a Cluster with REDIS_CLUSTER), its state changes logged, and its
 * probe (whether it answers); both closed by closers.
 */
function openGatewayRedis(
  config: GatewayConfig,
  logger: Logger,
  redisUrl: string,
  closers: Closer[],
): { redis: RedisClient; probe: RedisProbe } {
  // The fleet's connection policy (fail fast while Redis is away, yet wait for the
  // reconnect after a dropped idle connection); `gateway`: auto-pipelined heartbeats.
  // ioredis reconnects by itself; RedisStatusLog logs the state changes, with backoff.
  const redis = openRedis(redisUrl, { cluster: config.redisCluster, role: 'gateway', name: config.instanceId });
  // A frozen Redis keeps the connection ready: a PING a second tells health and the log.
  const probe = watchRedis(logger, redis, redisUrl);
  closers.push(async () => probe.stop());
  // QUIT bounded: a Redis that does not answer (frozen, a dead failover address) must not hold the shutdown.
  closers.push(() => closeRedis(redis));
  return { redis, probe };
}

/**
 * The registry, the event bus and the fleet (presence, detach decision, instance channel) on Redis;
 * the subscribers of the bus and of the channel watched by the probe (replaced with the connection).
 */
function redisPorts(
  config: GatewayConfig,
  logger: Logger,
  { redis, probe }: { redis: RedisClient; probe: RedisProbe },
): Pick<GatewayPorts, 'registry' | 'bus' | 'presence' | 'detachDecision' | 'channel' | 'liveness'> {
  const watchSubscriber = (subscriber: RedisClient) => probe.watch(subscriber);
  return {
    registry: new RedisRegistryStore(redis),
    // The retention every instance (and every publisher) of the fleet must share.
    bus: new RedisEventBus(redis, {
      retentionEvents: config.streamRetentionEvents,
      retentionMs: config.streamRetentionMs,
      retentionBytes: config.streamRetentionBytes,
      outbox: {
        retryDelaysMs: config.publishRetryDelaysMs,
        maxEvents: config.publishOutboxMaxEvents,
        maxBytes: config.publishOutboxMaxBytes,
        onEvent: outboxLogger(logger),
      },
      logger,
      watchSubscriber,
    }),
    // A session that left keeps its registry entry for the detach delay, to resume with it.
    presence: new RedisPresence(redis, { instanceTtlMs: config.instanceTtlMs, leaveGraceMs: config.detachDelayMs }),
    // The claim must outlast every instance's decision on the same departure (within one detach delay).
    detachDecision: new RedisDetachDecision(redis, { claimTtlMs: Math.max(60_000, 2 * config.detachDelayMs) }),
    channel: new RedisInstanceChannel(redis, config.instanceId, watchSubscriber),
    liveness: new RedisInstanceLiveness(redis),
  };
}

/**
 * The firebase-admin app of AUTH_MODE=firebase, made here rather than in authenticatorFor:
 * it reads Google credentials and must be deleted on shutdown, which only the composition
 * root arranges. firebase-admin is imported only in firebase mode (most of the start-up time).
 */
function firebaseAppFor(config: GatewayConfig, logger: Logger, closers: Closer[]): Promise<App> | undefined {
  if (config.authMode !== 'firebase') return undefined;
  const admin = import('firebase-admin/app');
  const app = admin.then(({ initializeApp }) =>
    initializeApp(
      config.firebaseProjectId ? { projectId: config.firebaseProjectId } : {},
      `livebus-${config.instanceId}`,
    ),
  );
  app.catch((error: unknown) =>
    logger.error('gateway_config_warning', { component: 'firebase-admin', error: String(error) }),
  );
  closers.push(() => Promise.all([admin, app]).then(([{ deleteApp }, a]) => deleteApp(a)));
  return app;
}
