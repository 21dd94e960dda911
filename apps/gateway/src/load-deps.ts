import type { App } from 'firebase-admin/app';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { authenticatorFor } from './auth/authenticator-for';
import type { GatewayConfig } from './config';
import type { EventBus } from './fleet/bus/event-bus';
import { RedisEventBus } from './fleet/bus/redis-event-bus';
import { RedisDetachDecision } from './fleet/detach/redis-detach-decision';
import { RedisInstanceChannel } from './fleet/instances/instance-channel';
import { RedisPresence } from './fleet/presence/redis-presence';
import { MemoryRegistryStore } from './fleet/registry/memory-registry-store';
import { RedisRegistryStore } from './fleet/registry/redis-registry-store';
import type { RegistryStore } from './fleet/registry/registry-store';
import type { DependencyStatus, GatewayDeps } from './gateway';
import type { buildListeners } from './listeners/firestore/build-listeners';
import type { Logger } from './logger';
import type { RedisClient } from './redis/redis-script';
import { outboxLogger, RedisStatusLog } from './redis/redis-status-log';
import type { buildRedisTaskQueue } from './tasks/build-task-queue';

/**
 * The builders of the optional parts whose modules are heavy: Firestore listeners
 * (firebase-admin, @google-cloud/firestore, gRPC: hundreds of modules) and the BullMQ
 * task queue. {@link loadDeps} imports each only when the configuration uses it.
 */
export interface DepsBuilders {
  buildListeners?: typeof buildListeners;
  buildRedisTaskQueue?: typeof buildRedisTaskQueue;
}

/**
 * {@link assembleDeps} with the heavy modules imported only when the configuration
 * needs them (LISTENERS_FILE; tasks on with Redis): what the CLI uses, so that a
 * gateway without them starts without loading them.
 */
export async function loadDeps(config: GatewayConfig, logger: Logger): Promise<GatewayDeps> {
  const [listeners, tasks] = await Promise.all([
    config.listeners ? import('./listeners/firestore/build-listeners') : undefined,
    config.redisUrl && config.unifiedRegistryEnabled ? import('./tasks/build-task-queue') : undefined,
  ]);
  return assembleDeps(config, logger, {
    ...(listeners ? { buildListeners: listeners.buildListeners } : {}),
    ...(tasks ? { buildRedisTaskQueue: tasks.buildRedisTaskQueue } : {}),
  });
}

/**
 * Chooses the implementation of each port from the configuration: Redis (the
 * registry and the event bus; a Cluster with REDIS_CLUSTER) when REDIS_URL is
 * set, the embedded in-memory stores otherwise; the authenticator named by
 * AUTH_MODE. Opens connections, so only main.ts (or a test) calls it. A part the
 * configuration asks for must have its builder (a `TypeError` otherwise).
 */
export function assembleDeps(config: GatewayConfig, logger: Logger, builders: DepsBuilders): GatewayDeps {
  const closers: Array<() => Promise<unknown>> = [];
  let registry: RegistryStore = new MemoryRegistryStore();
  let redisStatus: () => DependencyStatus = () => 'disabled';
  // Unset: gateway.ts makes the embedded in-memory implementations.
  let bus: EventBus | undefined;
  let fleet: Pick<GatewayDeps, 'presence' | 'detachDecision' | 'channel'> = {};
  let redisClient: RedisClient | undefined;

  if (config.redisUrl) {
    const options: RedisOptions = {
      // Fail fast while Redis is away: a command waits for the next reconnect attempt
      // (at most 200 ms apart, then `unavailable`), yet one that meets a dropped idle
      // connection (CLIENT KILL, an idle timeout) waits for that reconnect and succeeds.
      maxRetriesPerRequest: 0,
      enableOfflineQueue: true,
      connectTimeout: 2_000,
      retryStrategy: (times) => Math.min(50 * 2 ** (times - 1), 200),
      connectionName: `livebus-${config.instanceId}`,
    };
    // Heartbeats refresh many TTLs at once; auto-pipelining batches them into one round trip per tick.
    const redis = config.redisCluster
      ? new Cluster([config.redisUrl], {
          redisOptions: options,
          enableAutoPipelining: true,
          clusterRetryStrategy: (times) => Math.min(50 * 2 ** (times - 1), 200),
        })
      : new Redis(config.redisUrl, { ...options, enableAutoPipelining: true });
    redis.on('error', () => {
      // ioredis reconnects by itself; RedisStatusLog logs the state changes, with backoff.
    });
    new RedisStatusLog(logger, redis, { redisUrl: config.redisUrl });
    redisClient = redis;
    registry = new RedisRegistryStore(redis);
    // The retention every instance (and every publisher) of the fleet must share.
    bus = new RedisEventBus(redis, {
      retentionEvents: config.streamRetentionEvents,
      retentionMs: config.streamRetentionMs,
      retentionBytes: config.streamRetentionBytes,
      outbox: {
        retryDelaysMs: config.publishRetryDelaysMs,
        maxEvents: config.publishOutboxMaxEvents,
        onEvent: outboxLogger(logger),
      },
    });
    // The fleet: who holds which session, the atomic detach decision, orders between instances.
    fleet = {
      // A session that left keeps its registry entry for the detach delay, to resume with it.
      presence: new RedisPresence(redis, { instanceTtlMs: config.instanceTtlMs, leaveGraceMs: config.detachDelayMs }),
      // The claim must outlast every instance's decision on the same departure (within one detach delay).
      detachDecision: new RedisDetachDecision(redis, { claimTtlMs: Math.max(60_000, 2 * config.detachDelayMs) }),
      channel: new RedisInstanceChannel(redis, config.instanceId),
    };
    redisStatus = () => (redis.status === 'ready' ? 'ok' : 'down');
    closers.push(() => redis.quit().catch(() => redis.disconnect()));
  }

  // The firebase-admin app is made here, not in authenticatorFor: it reads Google
  // credentials and must be deleted on shutdown, which only this function arranges.
  // firebase-admin is imported only in firebase mode (it is most of the start-up time).
  let firebaseApp: Promise<App> | undefined;
  if (config.authMode === 'firebase') {
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
    firebaseApp = app;
  }
  const auth = authenticatorFor(config, { firebaseApp });
  // One Firestore client per process, on a Firebase app of its own (the authenticator's is
  // loaded lazily and never talks to Firestore).
  if (config.listeners && !builders.buildListeners) throw new TypeError('LISTENERS_FILE is set: pass buildListeners');
  const listeners = builders.buildListeners?.(config, logger, redisClient ? { redis: redisClient } : {});
  if (listeners) closers.push(() => listeners.close());

  // --- Tasks (TASK.*): a BullMQ queue on Redis when enabled; see tasks/ and docs/tasks.md. ---
  if (config.redisUrl && config.unifiedRegistryEnabled && !builders.buildRedisTaskQueue) {
    throw new TypeError('tasks are on with Redis: pass buildRedisTaskQueue');
  }
  const tasks = builders.buildRedisTaskQueue?.(config);
  if (tasks) closers.push(tasks.close);
  // --- end of tasks ---

  return {
    logger,
    registry,
    ...(bus ? { bus } : {}),
    ...fleet,
    auth,
    ...(tasks ? { tasks: tasks.queue } : {}),
    ...(listeners
      ? {
          sources: listeners.sources,
          lease: listeners.lease,
          workflowWatches: listeners.workflowWatches,
          ...(listeners.workflowSource ? { workflowSource: listeners.workflowSource } : {}),
        }
      : {}),
    redisStatus,
    onClose: async () => {
      await Promise.allSettled(closers.map((c) => c()));
    },
  };
}
