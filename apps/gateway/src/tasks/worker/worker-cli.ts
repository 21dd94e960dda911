import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createPublisher } from '@livebus/publisher';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { exitOnStopWhileStarting } from '../../cli/stop-while-starting';
import { ConfigError, type GatewayConfig, loadConfig } from '../../config';
import { createLogger, type Logger } from '../../logger';
import { beforeDeadline } from '../../redis/before-deadline';
import { RedisUnreachableError, waitForRedisAtStart } from '../../redis/redis-start-wait';
import { outboxLogger, watchRedis } from '../../redis/redis-status-log';
import { bearer, safeEqual } from '../../transport/http/http-io';
import { exitIfPortInUse, explainListenError } from '../../transport/port-in-use';
import { VERSION } from '../../version';
import { BullMqTaskQueue } from '../bullmq-task-queue';
import { RedisTaskStore } from '../redis-task-store';
import { registerTaskMetrics } from '../task-metrics';
import { closeTaskRedis, openTaskRedis } from '../task-redis';
import { BullMqTaskWorker } from './bullmq-task-worker';

/** How far past SHUTDOWN_GRACE_MS a worker's stop() may go to close its connections (the forced exit is at 1 s). */
const STOP_AFTER_GRACE_MS = 750;

/** A running worker process. */
export interface TaskWorkerProcess {
  /** Bound address of /healthz and /metrics. */
  address: AddressInfo;
  /** Graceful stop within SHUTDOWN_GRACE_MS: running jobs finish or go back to the queue. */
  stop(reason: string): Promise<void>;
}

/**
 * `livebus-gateway worker`: reads the same environment as the gateway, refuses to start
 * without REDIS_URL (exit 78) or when its Redis does not answer within
 * REDIS_START_TIMEOUT_MS (exit 69), runs until SIGTERM or SIGINT, then stops gracefully.
 */
export async function runWorkerCli(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  let config: GatewayConfig;
  try {
    config = loadConfig(env, { role: 'worker' });
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`livebus-gateway worker: ${error.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    throw error;
  }
  if (!config.redisUrl) {
    process.stderr.write(
      'livebus-gateway worker: REDIS_URL is required (without Redis the gateway runs tasks in its own process)\n',
    );
    process.exit(78);
  }
  const starting = exitOnStopWhileStarting('livebus-gateway worker');
  const logger = createLogger({ level: config.logLevel, format: config.logFormat, instanceId: config.instanceId });
  // As the gateway: a Redis that stays away at start stops the worker with one clear line
  // (exit 69) rather than a worker whose /healthz says ok while it can take no job.
  try {
    await waitForRedisAtStart(config, {
      onFirstFailure: (error) =>
        logger.warn('redis_status', { status: 'down', error, start_wait_ms: config.redisStartTimeoutMs }),
    });
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`livebus-gateway worker: ${error.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    if (!(error instanceof RedisUnreachableError)) throw error;
    process.stderr.write(`livebus-gateway worker: ${error.message}\n`);
    process.exit(69); // EX_UNAVAILABLE
  }
  // Which variable turned tasks off: TASKS_ENABLED when set, else UNIFIED_REGISTRY_ENABLED, which it follows.
  const tasksSetBy = env.TASKS_ENABLED?.trim() ? 'TASKS_ENABLED' : 'UNIFIED_REGISTRY_ENABLED';
  // From here a stop is graceful: BullMQ may take a job before the HTTP server listens, and a
  // stop while the worker starts waits for it, then lets that job finish or go back to the queue.
  starting();
  const started = startTaskWorker(config, logger, { tasksSetBy }).catch(exitIfPortInUse('livebus-gateway worker'));
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    setTimeout(() => process.exit(1), config.shutdownGraceMs + 1_000).unref();
    started
      .then((worker) => worker.stop(signal))
      .then(
        () => process.exit(0),
        () => process.exit(1),
      );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  await started;
}

/**
 * Starts a task worker: a BullMQ worker (unless TASKS_ENABLED is false, when it
 * stays idle and takes no job), progress published to users through `@livebus/publisher`,
 * and an HTTP server with /healthz and /metrics on WORKER_HTTP_PORT.
 */
export async function startTaskWorker(
  config: GatewayConfig,
  logger: Logger,
  options: { tasksSetBy?: 'TASKS_ENABLED' | 'UNIFIED_REGISTRY_ENABLED' } = {},
): Promise<TaskWorkerProcess> {
  // Two connections: `redis` fails fast (heartbeats, the queue depth of /metrics, the
  // status of /healthz); `jobs` waits through a reconnect (BullMQ, and the running jobs'
  // task store and progress events), so a Redis blip pauses a job at its next step
  // instead of failing the attempt and starting the analysis over.
  const redis = openTaskRedis(config, 'worker');
  const jobs = openTaskRedis(config, 'worker-jobs', { forBullMqWorker: true });
  // A frozen Redis keeps the connection ready: a PING a second tells /healthz and the log.
  const probe = watchRedis(logger, redis, config.redisUrl);
  const store = new RedisTaskStore(jobs, { ttlMs: config.taskTtlS * 1000 });
  // Retention must match the gateways', which read the same per-user streams.
  const publisher = createPublisher(
    { redis: jobs },
    {
      retentionEvents: config.streamRetentionEvents,
      retentionMs: config.streamRetentionMs,
      retentionBytes: config.streamRetentionBytes,
      // The gateway's outbox settings and log events (publish_outbox), as its own bus has them.
      retryDelaysMs: config.publishRetryDelaysMs,
      outboxMaxEvents: config.publishOutboxMaxEvents,
      outboxMaxBytes: config.publishOutboxMaxBytes,
      onOutboxEvent: outboxLogger(logger),
    },
  );
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'livebus_worker_' });
  const queue = new BullMqTaskQueue({ connection: redis, redis, store });
  const metrics = registerTaskMetrics(registry, () => queue.depth());

  const enabled = config.tasksEnabled;
  const worker = enabled
    ? new BullMqTaskWorker({
        connection: jobs,
        redis,
        workerId: config.instanceId,
        runner: {
          store,
          publish: (uid, event) => publisher.publish(uid, event),
          analysis: { maxBytes: config.taskMaxDocumentBytes, stageDelayMs: config.taskStageDelayMs },
        },
        logger,
        concurrency: config.workerConcurrency,
        attempts: config.taskAttempts,
        backoffMs: config.taskBackoffMs,
        lockMs: config.taskLockMs,
        observe: metrics.observe,
      })
    : undefined;
  if (!enabled) {
    logger.warn('task_worker_idle', {
      // With the unified registry on, only TASKS_ENABLED=false can have turned tasks off.
      reason: `${options.tasksSetBy ?? (config.unifiedRegistryEnabled ? 'TASKS_ENABLED' : 'UNIFIED_REGISTRY_ENABLED')}=false: tasks are off; this worker takes no job until it is set to true`,
    });
  }

  const server = createServer((req, res) => {
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(JSON.stringify(body));
    };
    // The path alone: a probe's query string (`/healthz?source=alb`) does not make it another route.
    const path = (req.url ?? '').split('?', 1)[0];
    if (req.method === 'GET' && path === '/healthz') {
      json(200, {
        status: 'ok',
        role: 'worker',
        version: VERSION,
        instance_id: config.instanceId,
        enabled,
        concurrency: config.workerConcurrency,
        active: worker?.active ?? 0,
        redis: redis.status === 'ready' && probe.answering ? 'ok' : 'down',
      });
    } else if (req.method === 'GET' && path === '/metrics') {
      // As the gateway's admin endpoints check it: in constant time, the header's spacing forgiven.
      const token = bearer(req);
      if (config.adminToken && !(token && safeEqual(token, config.adminToken))) {
        json(401, { error: { code: 'unauthenticated', message: 'admin token required' } });
        return;
      }
      registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': registry.contentType });
          res.end(text);
        },
        () => json(500, { error: { code: 'internal', message: 'metrics failed' } }),
      );
    } else {
      json(404, { error: { code: 'not_found', message: 'the worker serves /healthz and /metrics' } });
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.workerHttpPort, config.host, () => resolve());
  }).catch(async (error: unknown) => {
    // Nothing may stay open: the caller exits, or (embedded) carries on without this worker.
    await worker?.close(0);
    await Promise.allSettled([queue.close(), publisher.close()]);
    await Promise.allSettled([closeTaskRedis(redis), closeTaskRedis(jobs)]);
    throw explainListenError(error, 'WORKER_HTTP_PORT', config.workerHttpPort);
  });
  const address = server.address() as AddressInfo;
  logger.info('task_worker_listening', {
    host: address.address,
    port: address.port,
    enabled,
    concurrency: config.workerConcurrency,
    queue: 'bullmq',
  });

  return {
    address,
    async stop(reason) {
      const started = Date.now();
      logger.info('task_worker_shutdown_start', {
        reason,
        active: worker?.active ?? 0,
        grace_ms: config.shutdownGraceMs,
      });
      // Every step after the jobs shares what is left of the grace, and at most
      // STOP_AFTER_GRACE_MS past it (runWorkerCli exits by force 1 s past it): a Redis that
      // keeps its connections and answers nothing is dropped, not waited for.
      const closeBy = started + config.shutdownGraceMs + STOP_AFTER_GRACE_MS;
      // At least 1 ms: a timeout of 0 means none to closeTaskRedis.
      const left = (keep = 0) => Math.max(1, closeBy - keep - Date.now());
      await worker?.close(config.shutdownGraceMs);
      await beforeDeadline(Promise.allSettled([queue.close(), publisher.close()]), left(250));
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      probe.stop();
      await Promise.allSettled([closeTaskRedis(redis, left()), closeTaskRedis(jobs, left())]);
      logger.info('task_worker_shutdown_complete', { took_ms: Date.now() - started });
    },
  };
}
