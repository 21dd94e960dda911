import type { App } from 'firebase-admin/app';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { authenticatorFor } from './auth/authenticator-for';
import type { EventBus } from './bus/event-bus';
import { RedisEventBus } from './bus/redis-event-bus';
import type { GatewayConfig } from './config';
import { RedisInstanceChannel } from './fleet/instance-channel';
import { RedisDetachDecision } from './fleet/redis-detach-decision';
import type { DependencyStatus, GatewayDeps } from './gateway';
import type { Logger } from './logger';
import { RedisPresence } from './presence/redis-presence';
import { MemoryRegistryStore } from './registry/memory-registry-store';
import { RedisRegistryStore } from './registry/redis-registry-store';
import type { RegistryStore } from './registry/registry-store';

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

  if (config.redisUrl) {
    const options: RedisOptions = {
      // Fail commands fast while Redis is away instead of queueing them without bound.
      maxRetriesPerRequest: 2,
      enableOfflineQueue: true,
      connectTimeout: 5_000,
      retryStrategy: (times) => Math.min(times * 200, 2_000),
      connectionName: `livebus-${config.instanceId}`,
    };
    // Heartbeats refresh many TTLs at once; auto-pipelining batches them into one round trip per tick.
    const redis = config.redisCluster
      ? new Cluster([config.redisUrl], {
          redisOptions: options,
          enableAutoPipelining: true,
          clusterRetryStrategy: (times) => Math.min(times * 200, 2_000),
        })
      : new Redis(config.redisUrl, { ...options, enableAutoPipelining: true });
    let last = '';
    redis.on('error', () => {
      // ioredis reconnects by itself; the status change below is what we log.
    });
    for (const event of ['ready', 'close', 'reconnecting', 'end']) {
      redis.on(event, () => {
        if (event !== last) logger.info('redis_status', { status: event });
        last = event;
      });
    }
    registry = new RedisRegistryStore(redis);
    // The retention every instance (and every publisher) of the fleet must share.
    bus = new RedisEventBus(redis, {
      retentionEvents: config.streamRetentionEvents,
      retentionMs: config.streamRetentionMs,
      retentionBytes: config.streamRetentionBytes,
    });
    // The fleet: who holds which session, the atomic detach decision, orders between instances.
    fleet = {
      presence: new RedisPresence(redis, { instanceTtlMs: config.instanceTtlMs }),
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

  return {
    logger,
    registry,
    ...(bus ? { bus } : {}),
    ...fleet,
    auth,
    redisStatus,
    onClose: async () => {
      await Promise.allSettled(closers.map((c) => c()));
    },
  };
}
