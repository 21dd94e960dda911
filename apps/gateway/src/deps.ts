import type { App } from 'firebase-admin/app';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { authenticatorFor } from './auth/authenticator-for';
import type { EventBus } from './bus/event-bus';
import { RedisEventBus } from './bus/redis-event-bus';
import type { GatewayConfig } from './config';
import { RedisInstanceChannel } from './fleet/instance-channel';
import { RedisDetachDecision } from './fleet/redis-detach-decision';
import type { RedisClient } from './fleet/redis-script';
import type { DependencyStatus, GatewayDeps } from './gateway';
import { buildListeners } from './listeners/build-listeners';
import type { Logger } from './logger';
import { RedisPresence } from './presence/redis-presence';
import { outboxLogger, RedisStatusLog } from './redis-status-log';
import { MemoryRegistryStore } from './registry/memory-registry-store';
import { RedisRegistryStore } from './registry/redis-registry-store';
import type { RegistryStore } from './registry/registry-store';
import { buildRedisTaskQueue } from './tasks/build-task-queue';

/**
 * Chooses the implementation of each port from the configuration: Redis (the
 * registry and the event bus; a Cluster with REDIS_CLUSTER) when REDIS_URL is
 * set, the embedded in-memory stores otherwise; the authenticator named by
 * AUTH_MODE. Opens connections, so only main.ts (or a test) calls it.
 */
export function buildDeps(config: GatewayConfig, logger: Logger): GatewayDeps {
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
    new RedisStatusLog(logger, redis);
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
      detachDecision: new RedisDetachDecision(redis),
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
  const listeners = buildListeners(config, logger, redisClient ? { redis: redisClient } : {});
  if (listeners) closers.push(() => listeners.close());

  // --- Tasks (TASK.*): a BullMQ queue on Redis when enabled; see tasks/ and docs/tasks.md. ---
  const tasks = buildRedisTaskQueue(config);
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
