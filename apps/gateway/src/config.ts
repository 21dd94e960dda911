import { readFileSync } from 'node:fs';
import { protocolDefaults } from '@livebus/protocol';
import { outboxDefaults, retentionDefaults } from '@livebus/publisher';
import { z } from 'zod';
import { MAX_TIMER_MS } from './core/small-times';
import { DEFAULT_TOKEN_CLOCK_TOLERANCE_MS } from './core/token-schedule';
import { DEFAULT_INSTANCE_TTL_MS } from './fleet/presence/presence';
import { listenerDefaults } from './listeners/listener-defaults';
import { type ListenersConfig, ListenersConfigError, loadListenersConfig } from './listeners/listeners-config';
import { MAX_OPEN_PER_USER_BOUND, taskDefaults } from './tasks/task-defaults';

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');
const int = (min: number, max = Number.MAX_SAFE_INTEGER) => z.coerce.number().int().min(min).max(max);
/** Milliseconds, at most {@link MAX_TIMER_MS} (about 24.8 days). */
const ms = (min: number) =>
  z.coerce
    .number()
    .int()
    .min(min)
    .max(MAX_TIMER_MS, { error: `must be at most ${MAX_TIMER_MS} ms (about 24.8 days: the longest timer Node has)` });

/**
 * Every environment variable the gateway reads, with its default. Parsed once
 * at start-up by {@link loadConfig}; docs/configuration.md lists the same.
 */
export const EnvSchema = z.object({
  NODE_ENV: z.string().default('development'),
  PORT: int(0, 65535).default(8080),
  HOST: z.string().min(1).default('0.0.0.0'),
  INSTANCE_ID: z.string().min(1).optional(),
  DETACH_DELAY_MS: ms(0).default(protocolDefaults.detachDelayMs),
  PING_INTERVAL_MS: ms(100).default(protocolDefaults.pingIntervalMs),
  PING_TIMEOUT_MS: ms(200).default(protocolDefaults.pingTimeoutMs),
  HANDSHAKE_TIMEOUT_MS: ms(100).default(protocolDefaults.handshakeTimeoutMs),
  REDIS_URL: z
    .url({ protocol: /^rediss?$/, error: 'must be a redis:// or rediss:// URL, like redis://10.0.0.5:6379' })
    .optional(),
  REDIS_CLUSTER: bool.default(false),
  REDIS_START_TIMEOUT_MS: ms(100).default(10_000),
  READINESS_REQUIRES_REDIS: bool.default(false),
  AUTH_MODE: z.enum(['firebase', 'jwt', 'none']).default('none'),
  JWT_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
  JWT_JWKS_URL: z
    .url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL of a JSON Web Key Set' })
    .optional(),
  JWT_ISSUER: z.string().min(1).optional(),
  JWT_AUDIENCE: z.string().min(1).optional(),
  // Unset: follows NODE_ENV (required in production).
  JWT_REQUIRE_EXP: bool.optional(),
  // Trimmed, as the bearer it is compared with: a secret file's trailing newline would match none.
  // (JWT_SECRET is not: the signer may use the same raw secret.)
  ADMIN_TOKEN: z.string().trim().min(16, 'must be at least 16 characters').optional(),
  SERVICE_ROLE_CLAIM: z.string().min(1).default('livebus_service'),
  FIREBASE_PROJECT_ID: z.string().min(1).optional(),
  // Read by firebase-admin itself; the gateway only refuses it in production.
  FIREBASE_AUTH_EMULATOR_HOST: z.string().min(1).optional(),
  UNIFIED_REGISTRY_ENABLED: bool.default(false),
  // Unset: follows UNIFIED_REGISTRY_ENABLED, which switched tasks alone before this variable existed.
  TASKS_ENABLED: bool.optional(),
  UNIFIED_REGISTRY_TTL_S: int(1).default(3600),
  REGISTRY_DEBUG: bool.default(false),
  LOG_LEVEL: z.enum(['error', 'warn', 'info', 'debug']).default('info'),
  LOG_FORMAT: z.enum(['json', 'pretty']).default('json'),
  MAX_PAYLOAD_BYTES: int(1024).default(protocolDefaults.maxFrameBytes),
  MAX_BUFFERED_BYTES: int(1024).default(4 * 1024 * 1024),
  MAX_SESSIONS_PER_USER: int(1).default(20),
  // Unset: REGISTRY_SESSIONS_PER_LIVE_SESSION times MAX_SESSIONS_PER_USER.
  REGISTRY_MAX_SESSIONS_PER_USER: int(1).optional(),
  SHUTDOWN_GRACE_MS: int(0, 25_000).default(10_000),
  METRICS_MAX_USERS: int(1).default(10_000),
  STREAM_RETENTION_EVENTS: int(0).default(retentionDefaults.retentionEvents),
  // Not a timer (an age in Redis): no timer bound.
  STREAM_RETENTION_MS: int(0).default(retentionDefaults.retentionMs),
  STREAM_RETENTION_BYTES: int(1024).default(retentionDefaults.retentionBytes),
  ALLOWED_ORIGINS: z.string().optional(),
  TOKEN_REFRESH_LEAD_MS: ms(0).default(protocolDefaults.tokenRefreshLeadMs),
  TOKEN_EXPIRY_GRACE_MS: ms(0).default(30_000),
  TOKEN_CLOCK_TOLERANCE_MS: int(0, 300_000).default(DEFAULT_TOKEN_CLOCK_TOLERANCE_MS),
  INSTANCE_TTL_MS: ms(300).default(DEFAULT_INSTANCE_TTL_MS),
  RPC_TIMEOUT_MS: ms(1).default(10_000),
  RATE_LIMIT_FRAMES_PER_S: int(0).default(100),
  RATE_LIMIT_BURST: int(1).default(200),
  WORKER_CONCURRENCY: int(1, 256).default(taskDefaults.concurrency),
  WORKER_HTTP_PORT: int(0, 65535).default(8090),
  TASK_ATTEMPTS: int(1, 50).default(taskDefaults.attempts),
  TASK_BACKOFF_MS: ms(0).default(taskDefaults.backoffMs),
  TASK_LOCK_MS: ms(1_000).default(taskDefaults.lockMs),
  TASK_MAX_DOCUMENT_BYTES: int(1, 64 * 1024 * 1024).default(taskDefaults.maxDocumentBytes),
  TASK_TTL_S: int(1).default(taskDefaults.ttlS),
  TASK_STAGE_DELAY_MS: int(0, 60_000).default(taskDefaults.stageDelayMs),
  TASK_MAX_OPEN_PER_USER: int(0, MAX_OPEN_PER_USER_BOUND).default(taskDefaults.maxOpenPerUser),
  TASK_MAX_QUEUED: int(0).default(taskDefaults.maxQueued),
  LISTENERS_FILE: z.string().min(1).optional(),
  GOOGLE_CLOUD_PROJECT: z.string().min(1).optional(),
  GOOGLE_APPLICATION_CREDENTIALS: z.string().min(1).optional(),
  FIRESTORE_EMULATOR_HOST: z.string().min(1).optional(),
  LISTENER_LEASE_TTL_MS: ms(300).default(listenerDefaults.leaseTtlMs),
  LISTENER_FAILOVER_MS: ms(0)
    .refine((ms) => ms === 0 || ms >= 200, 'must be 0 (off) or at least 200')
    .default(listenerDefaults.failoverMs),
  LISTENER_STALL_MS: ms(0).default(listenerDefaults.stallMs),
  LISTENER_RETRY_MAX_MS: ms(100).default(listenerDefaults.retryMaxMs),
  LISTENER_TRACKED_DOCS_MAX: int(0).default(listenerDefaults.trackedDocsMax),
  WORKFLOW_MAX_WATCHES_PER_USER: int(0).default(listenerDefaults.workflowWatchesMax),
  PUBLISH_RETRY_DELAYS_MS: z
    .string()
    .regex(/^\s*\d+(\s*,\s*\d+)*\s*$/, 'must be a comma-separated list of milliseconds, like 1000,2000,4000')
    .refine((list) => list.split(',').every((d) => Number(d) <= MAX_TIMER_MS), {
      error: `each delay must be at most ${MAX_TIMER_MS} ms (about 24.8 days: the longest timer Node has)`,
    })
    .default(outboxDefaults.retryDelaysMs.join(',')),
  PUBLISH_OUTBOX_MAX_EVENTS: int(0).default(outboxDefaults.maxEvents),
  PUBLISH_OUTBOX_MAX_BYTES: int(0).default(outboxDefaults.maxBytes),
  LISTEN_BACKLOG: int(1, 65535).default(4096),
  HEALTH_PORT: int(0, 65535).optional(),
  ADMISSION_MAX_HANDSHAKES: int(0).default(3000),
  ADMISSION_MAX_LAG_MS: ms(0).default(0),
  ADMISSION_RETRY_AFTER_S: int(1, 3600).default(1),
});

/** Resolved gateway configuration (camelCase, units in names). */
export interface GatewayConfig {
  /** NODE_ENV is `production` (read case-insensitively): the production refusals apply. */
  production: boolean;
  /**
   * NODE_ENV, trimmed and lower-cased. Neither `production`, `development` nor `test` (a typo
   * like `prod`, or `staging`): the production refusals are off, and the start says so.
   * Unset (a configuration built without loadConfig): not checked. From defaultConfig, it
   * follows `production` when that is given.
   */
  nodeEnv?: string;
  port: number;
  host: string;
  /** Names this process in logs, `welcome` frames and the registry. @default `gw-<random>` */
  instanceId: string;
  /** @default 5_000 */
  detachDelayMs: number;
  /** @default 20_000 */
  pingIntervalMs: number;
  /** @default 60_000 */
  pingTimeoutMs: number;
  /** @default 10_000 */
  handshakeTimeoutMs: number;
  redisUrl: string | undefined;
  /** REDIS_URL is one seed node of a Redis Cluster (ioredis `Cluster`), not a standalone server. @default false */
  redisCluster: boolean;
  /**
   * `/health/readiness` answers 503 while Redis is down. Off by default: ECS replaces the tasks
   * that fail their target group's check, so a Redis outage would replace the whole fleet (on
   * Kubernetes an unready pod is only taken out of rotation: turn it on there). @default false
   */
  readinessRequiresRedis: boolean;
  /**
   * How long the gateway and the worker wait at start for the Redis of REDIS_URL to
   * answer before exiting 69 with "cannot reach Redis at HOST:PORT (CODE); check
   * REDIS_URL": long enough for a Redis starting alongside, short enough that a wrong
   * URL or password shows as a stopped task with its reason. @default 10_000
   */
  redisStartTimeoutMs: number;
  authMode: 'firebase' | 'jwt' | 'none';
  /** Shared secret that verifies HS256 tokens in `jwt` mode. */
  jwtSecret: string | undefined;
  /** JWKS URL of an identity provider whose keys verify RS256 / ES256 tokens in `jwt` mode. */
  jwtJwksUrl: string | undefined;
  /** Required `iss` of every token in `jwt` mode; unset: not checked. */
  jwtIssuer: string | undefined;
  /** Required `aud` of every token in `jwt` mode; unset: not checked. */
  jwtAudience: string | undefined;
  /**
   * `jwt` mode refuses a token without `exp` (close 4001 `invalid_token`, HTTP 401): one that
   * leaked would work for ever (JWT_REQUIRE_EXP). @default production
   */
  jwtRequireExp: boolean;
  adminToken: string | undefined;
  /** Token claim that marks a service caller allowed to act for any user, when it is `true` or `"true"`. @default 'livebus_service' */
  serviceRoleClaim: string;
  firebaseProjectId: string | undefined;
  /** `UNIFIED_REGISTRY.*` answer, and the heartbeat refreshes the unified registry (UNIFIED_REGISTRY_ENABLED). */
  unifiedRegistryEnabled: boolean;
  /**
   * `TASK.*` answer and task workers take jobs (TASKS_ENABLED). Unset, it follows
   * {@link unifiedRegistryEnabled}: one switch turned both on before there were two.
   * @default unifiedRegistryEnabled
   */
  tasksEnabled: boolean;
  unifiedRegistryTtlS: number;
  registryDebug: boolean;
  logLevel: 'error' | 'warn' | 'info' | 'debug';
  logFormat: 'json' | 'pretty';
  maxPayloadBytes: number;
  maxBufferedBytes: number;
  maxSessionsPerUser: number;
  /**
   * Most sessions `REGISTRY.register_user` keeps registered per user; a new session id past it
   * is refused with `invalid_params` (an id already registered is always taken again). At least
   * {@link maxSessionsPerUser}. @default REGISTRY_SESSIONS_PER_LIVE_SESSION × maxSessionsPerUser (100)
   */
  registryMaxSessionsPerUser: number;
  shutdownGraceMs: number;
  metricsMaxUsers: number;
  streamRetentionEvents: number;
  streamRetentionMs: number;
  /** Bytes of serialised events retained per user for resume; the oldest go first. @default retentionDefaults.retentionBytes (1 MiB) */
  streamRetentionBytes: number;
  /**
   * Origins allowed to open a WebSocket (exact `https://app.example.com`, or a
   * `https://*.example.com` wildcard for subdomains). Undefined: any origin.
   */
  allowedOrigins: string[] | undefined;
  /** How long before a session's token expires the gateway asks for a fresh one. @default 60_000 */
  tokenRefreshLeadMs: number;
  /**
   * How long past the end of its token's validity (`exp` plus {@link tokenClockToleranceMs}) a
   * session may wait for a fresh token before close 4011. @default 30_000
   */
  tokenExpiryGraceMs: number;
  /**
   * Clock skew tolerated between the token issuer and the gateway: a token is valid until `exp`
   * plus this (and from `nbf` minus this), alike for the WebSocket hello, `auth` frames and the
   * HTTP API. firebase-admin checks `exp` itself, with no tolerance, in AUTH_MODE=firebase.
   * @default 5_000
   */
  tokenClockToleranceMs: number;
  /**
   * How long an instance's sessions stay in the fleet's presence directory after its
   * last heartbeat (every third of it): a killed instance's sessions, and with them its
   * users' registry sessions, are gone within this. @default DEFAULT_INSTANCE_TTL_MS (30 s)
   */
  instanceTtlMs: number;
  rpcTimeoutMs: number;
  /** Frames a connection may send per second on average; 0 turns the limit off. @default 100 */
  rateLimitFramesPerS: number;
  /** Frames a connection may send at once above the average. @default 200 */
  rateLimitBurst: number;
  /** Jobs one worker (process, or the embedded queue) runs at once. @default taskDefaults.concurrency (2) */
  workerConcurrency: number;
  /**
   * Port of the worker process's /healthz and /metrics (`livebus-gateway worker`). Apart
   * from PORT (8080) and the HEALTH_PORT the docs use (8081), so a gateway and a worker
   * run on one host with their defaults. @default 8090
   */
  workerHttpPort: number;
  /** Starts of a task before a transient failure (Redis away) is final. @default taskDefaults.attempts (3) */
  taskAttempts: number;
  /** First retry delay of a task, doubled for each further retry. @default taskDefaults.backoffMs (1 s) */
  taskBackoffMs: number;
  /** Job lock; a job whose worker died is started again by another worker about this long after. @default taskDefaults.lockMs (30 s) */
  taskLockMs: number;
  /** Largest document `TASK.start_document_analysis` accepts (UTF-8 bytes). @default taskDefaults.maxDocumentBytes (512 KiB) */
  taskMaxDocumentBytes: number;
  /** How long a task's status stays readable after its last change. @default taskDefaults.ttlS (1 day) */
  taskTtlS: number;
  /** A pause after each analysis stage, for tests and demos only. @default taskDefaults.stageDelayMs (0) */
  taskStageDelayMs: number;
  /** Tasks one user may have queued or running at once; 0: no limit. @default taskDefaults.maxOpenPerUser (10) */
  taskMaxOpenPerUser: number;
  /** Jobs the task queue may hold waiting or delayed; 0: no limit. @default taskDefaults.maxQueued (1 000) */
  taskMaxQueued: number;
  /** Firestore listeners from LISTENERS_FILE; undefined: none (the gateway only relays published events). */
  listeners: ListenersConfig | undefined;
  /** Firestore project of the listeners (FIREBASE_PROJECT_ID, else GOOGLE_CLOUD_PROJECT). */
  firestoreProjectId: string | undefined;
  /** Lease of a user's listeners in the fleet; renewed every third of it. @default listenerDefaults.leaseTtlMs (15 s) */
  listenerLeaseTtlMs: number;
  /**
   * How long a holder of listeners may go without proving it runs before an instance serving
   * its users on standby takes them over (0: only when each user's lease expires).
   * @default listenerDefaults.failoverMs (2 s)
   */
  listenerFailoverMs: number;
  /** A listener with no snapshot for this long is re-opened (0: never). @default listenerDefaults.stallMs (30 min) */
  listenerStallMs: number;
  /** Longest backoff between retries of a failed listener. @default listenerDefaults.retryMaxMs (30 s) */
  listenerRetryMaxMs: number;
  /**
   * Document paths each listener remembers as delivered, so a new owner reports the
   * ones deleted during a takeover as `removed`. @default listenerDefaults.trackedDocsMax (1 000)
   */
  listenerTrackedDocsMax: number;
  /**
   * Jobs one user may watch at once with WORKFLOW.watch (the fleet's watch set; without a workflow
   * source, the watches counted here): a further job is refused with `invalid_params`.
   * @default listenerDefaults.workflowWatchesMax (100)
   */
  workflowMaxWatchesPerUser: number;
  /** Waits between attempts of a publish while Redis is away; then it waits in the outbox. @default outboxDefaults.retryDelaysMs ([1000, 2000, 4000]) */
  publishRetryDelaysMs: number[];
  /** Most events the publish outbox holds while Redis is away; 0: none (publish fails after the retries). @default outboxDefaults.maxEvents (10 000) */
  publishOutboxMaxEvents: number;
  /** Most bytes of event JSON the publish outbox holds (and the worker's publisher); 0: no bound in bytes. @default outboxDefaults.maxBytes (64 MiB) */
  publishOutboxMaxBytes: number;
  /**
   * Connections the kernel queues for accept (capped by `net.core.somaxconn`). Node's
   * default, 511, drops SYNs when thousands of clients come back at once; each dropped
   * one waits a 1 s TCP retransmission. @default 4096
   */
  listenBacklog: number;
  /**
   * A second port serving only /healthz, /health/liveness and /health/readiness, from a
   * worker thread: busy main-thread work (a reconnect storm) does not delay them. For
   * the ALB target group's health check port and the ECS container check. Undefined: none.
   */
  healthPort: number | undefined;
  /**
   * Handshakes in flight above which new upgrades get `503` + `Retry-After`; 0: no bound.
   * A safety net for storms larger than an instance can take. A refused client comes back
   * 1 to 3 s later, so the bound is about 2 to 5 s of hellos on a small instance: at 1000,
   * 2 000 clients coming back within half a second were refused by the hundreds on a loaded
   * 2-core host and were all back seconds later than without refusals. @default 3000
   */
  admissionMaxHandshakes: number;
  /**
   * Event-loop lag (ms) above which new upgrades get `503` + `Retry-After` during a burst;
   * 0: not measured. Off by default: on a loaded host it slowed reconnection by seconds
   * without making health checks on the main port reliable (HEALTH_PORT does). @default 0
   */
  admissionMaxLagMs: number;
  /** `Retry-After` of a refused upgrade: between this and twice this, in seconds. @default 1 */
  admissionRetryAfterS: number;
}

/** A bad environment: the message names every offending variable and what it allows. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/**
 * Registered sessions (`REGISTRY.register_user`) a user may keep per live session they may hold,
 * unless REGISTRY_MAX_SESSIONS_PER_USER says otherwise: room for the entries of tabs that closed
 * without unregistering (pruned DETACH_DELAY_MS after the close, at once with 0) and for a
 * backend's registrations.
 */
export const REGISTRY_SESSIONS_PER_LIVE_SESSION = 5;

/** Defaults for {@link createGateway} when it is built from code rather than the environment. */
export function defaultConfig(overrides: Partial<GatewayConfig> = {}): GatewayConfig {
  // As in the environment: tasks follow the unified registry unless told otherwise, and the
  // registry's bound follows the live sessions'.
  const tasks = overrides.tasksEnabled ?? overrides.unifiedRegistryEnabled;
  // As in the environment: tokens without exp are refused in production unless told otherwise.
  const requireExp = overrides.jwtRequireExp ?? overrides.production;
  const live = overrides.maxSessionsPerUser;
  // As in the environment: NODE_ENV and `production` agree (what /debug shows).
  const nodeEnv = overrides.nodeEnv ?? (overrides.production ? 'production' : undefined);
  const config = {
    ...loadConfig({}),
    ...(live === undefined ? {} : { registryMaxSessionsPerUser: REGISTRY_SESSIONS_PER_LIVE_SESSION * live }),
    ...overrides,
    ...(tasks === undefined ? {} : { tasksEnabled: tasks }),
    ...(requireExp === undefined ? {} : { jwtRequireExp: requireExp }),
    ...(nodeEnv === undefined ? {} : { nodeEnv }),
  };
  // As loadConfig: every live session of a user must be able to register.
  if (config.registryMaxSessionsPerUser < config.maxSessionsPerUser) {
    throw new ConfigError(
      `registryMaxSessionsPerUser (${config.registryMaxSessionsPerUser}) must be at least maxSessionsPerUser (${config.maxSessionsPerUser}), or a user's live sessions could not all register`,
    );
  }
  return config;
}

/** What {@link loadConfig} reads the environment for. */
export interface LoadConfigOptions {
  /**
   * `worker`: the task worker (`livebus-gateway worker`), which checks no client tokens: the
   * token settings (`AUTH_MODE` and what it needs, the production refusals of weaker token
   * checks) are not checked, so its task needs none of them. @default 'gateway'
   */
  role?: 'gateway' | 'worker';
}

/** Parses and checks the environment once; throws {@link ConfigError} naming each bad variable. */
export function loadConfig(env: Record<string, string | undefined>, options: LoadConfigOptions = {}): GatewayConfig {
  const checksTokens = options.role !== 'worker';
  // Empty (or blank) strings mean "unset", as in most container environments: a blank number would read as 0.
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v.trim() !== ''));
  // Parsed once: zod's compiled fast path would cost more to generate than it saves (start-up time).
  const parsed = EnvSchema.safeParse(cleaned, { jitless: true });
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
  }
  const e = parsed.data;
  const problems: string[] = [];
  // `Production` is production: a spelling must not silently switch the refusals off.
  const nodeEnv = e.NODE_ENV.trim().toLowerCase();
  const production = nodeEnv === 'production';
  if (checksTokens) problems.push(...tokenProblems(e, cleaned, production));
  if (production && !e.ADMIN_TOKEN) problems.push('  ADMIN_TOKEN: required when NODE_ENV=production');
  // firebase-admin reads the key when it first needs it: a path that is not there would fail
  // every listener (retried for ever), or every token when the project comes from the key, and
  // say so only in their errors. Not checked where no key is read: the emulator, or Firebase
  // auth with its project named (token checks need the project and Google's public keys only).
  const keyNeeded =
    (e.LISTENERS_FILE && !e.FIRESTORE_EMULATOR_HOST) ||
    (checksTokens &&
      e.AUTH_MODE === 'firebase' &&
      !e.FIREBASE_PROJECT_ID &&
      !cleaned.GOOGLE_CLOUD_PROJECT &&
      !cleaned.GCLOUD_PROJECT);
  if (e.GOOGLE_APPLICATION_CREDENTIALS && keyNeeded) {
    const problem = unreadableKey(e.GOOGLE_APPLICATION_CREDENTIALS);
    if (problem) problems.push(`  GOOGLE_APPLICATION_CREDENTIALS: ${problem}`);
  }
  if (e.REGISTRY_MAX_SESSIONS_PER_USER !== undefined && e.REGISTRY_MAX_SESSIONS_PER_USER < e.MAX_SESSIONS_PER_USER) {
    problems.push(
      `  REGISTRY_MAX_SESSIONS_PER_USER: must be at least MAX_SESSIONS_PER_USER (${e.MAX_SESSIONS_PER_USER}), or a user's live sessions could not all register`,
    );
  }
  if (e.PING_TIMEOUT_MS <= e.PING_INTERVAL_MS) {
    problems.push(`  PING_TIMEOUT_MS: must be greater than PING_INTERVAL_MS (${e.PING_INTERVAL_MS})`);
  }
  const origins = allowedOrigins(e.ALLOWED_ORIGINS, problems);
  if (e.HEALTH_PORT !== undefined && e.HEALTH_PORT !== 0 && e.HEALTH_PORT === e.PORT) {
    problems.push(
      `  HEALTH_PORT: must differ from PORT (${e.PORT}): it is a second port, served by a thread of its own`,
    );
  }
  let listeners: ListenersConfig | undefined;
  if (e.LISTENERS_FILE) {
    try {
      listeners = loadListenersConfig(e.LISTENERS_FILE);
    } catch (error) {
      if (!(error instanceof ListenersConfigError)) throw error;
      problems.push(`  LISTENERS_FILE: ${error.message.replace(/\n/g, '\n  ')}`);
    }
    if (!e.FIRESTORE_EMULATOR_HOST && !e.GOOGLE_APPLICATION_CREDENTIALS) {
      problems.push(
        '  LISTENERS_FILE: Firestore listeners need FIRESTORE_EMULATOR_HOST (emulator) or GOOGLE_APPLICATION_CREDENTIALS (service account)',
      );
    }
    if (!e.FIREBASE_PROJECT_ID && !e.GOOGLE_CLOUD_PROJECT) {
      problems.push('  LISTENERS_FILE: Firestore listeners need FIREBASE_PROJECT_ID (or GOOGLE_CLOUD_PROJECT)');
    }
  }
  if (problems.length) throw new ConfigError(`invalid configuration:\n${problems.join('\n')}`);

  return {
    production,
    nodeEnv,
    port: e.PORT,
    host: e.HOST,
    instanceId: e.INSTANCE_ID ?? `gw-${Math.random().toString(36).slice(2, 10)}`,
    detachDelayMs: e.DETACH_DELAY_MS,
    pingIntervalMs: e.PING_INTERVAL_MS,
    pingTimeoutMs: e.PING_TIMEOUT_MS,
    handshakeTimeoutMs: e.HANDSHAKE_TIMEOUT_MS,
    redisUrl: e.REDIS_URL,
    redisCluster: e.REDIS_CLUSTER,
    readinessRequiresRedis: e.READINESS_REQUIRES_REDIS,
    redisStartTimeoutMs: e.REDIS_START_TIMEOUT_MS,
    authMode: e.AUTH_MODE,
    jwtSecret: e.JWT_SECRET,
    jwtJwksUrl: e.JWT_JWKS_URL,
    jwtIssuer: e.JWT_ISSUER,
    jwtAudience: e.JWT_AUDIENCE,
    jwtRequireExp: e.JWT_REQUIRE_EXP ?? production,
    adminToken: e.ADMIN_TOKEN,
    serviceRoleClaim: e.SERVICE_ROLE_CLAIM,
    firebaseProjectId: e.FIREBASE_PROJECT_ID,
    unifiedRegistryEnabled: e.UNIFIED_REGISTRY_ENABLED,
    tasksEnabled: e.TASKS_ENABLED ?? e.UNIFIED_REGISTRY_ENABLED,
    unifiedRegistryTtlS: e.UNIFIED_REGISTRY_TTL_S,
    registryDebug: e.REGISTRY_DEBUG,
    logLevel: e.LOG_LEVEL,
    logFormat: e.LOG_FORMAT,
    maxPayloadBytes: e.MAX_PAYLOAD_BYTES,
    maxBufferedBytes: e.MAX_BUFFERED_BYTES,
    maxSessionsPerUser: e.MAX_SESSIONS_PER_USER,
    registryMaxSessionsPerUser:
      e.REGISTRY_MAX_SESSIONS_PER_USER ?? REGISTRY_SESSIONS_PER_LIVE_SESSION * e.MAX_SESSIONS_PER_USER,
    shutdownGraceMs: e.SHUTDOWN_GRACE_MS,
    metricsMaxUsers: e.METRICS_MAX_USERS,
    streamRetentionEvents: e.STREAM_RETENTION_EVENTS,
    streamRetentionMs: e.STREAM_RETENTION_MS,
    streamRetentionBytes: e.STREAM_RETENTION_BYTES,
    allowedOrigins: origins,
    tokenRefreshLeadMs: e.TOKEN_REFRESH_LEAD_MS,
    tokenExpiryGraceMs: e.TOKEN_EXPIRY_GRACE_MS,
    tokenClockToleranceMs: e.TOKEN_CLOCK_TOLERANCE_MS,
    instanceTtlMs: e.INSTANCE_TTL_MS,
    rpcTimeoutMs: e.RPC_TIMEOUT_MS,
    rateLimitFramesPerS: e.RATE_LIMIT_FRAMES_PER_S,
    rateLimitBurst: e.RATE_LIMIT_BURST,
    workerConcurrency: e.WORKER_CONCURRENCY,
    workerHttpPort: e.WORKER_HTTP_PORT,
    taskAttempts: e.TASK_ATTEMPTS,
    taskBackoffMs: e.TASK_BACKOFF_MS,
    taskLockMs: e.TASK_LOCK_MS,
    taskMaxDocumentBytes: e.TASK_MAX_DOCUMENT_BYTES,
    taskTtlS: e.TASK_TTL_S,
    taskStageDelayMs: e.TASK_STAGE_DELAY_MS,
    taskMaxOpenPerUser: e.TASK_MAX_OPEN_PER_USER,
    taskMaxQueued: e.TASK_MAX_QUEUED,
    listeners,
    firestoreProjectId: e.FIREBASE_PROJECT_ID ?? e.GOOGLE_CLOUD_PROJECT,
    listenerLeaseTtlMs: e.LISTENER_LEASE_TTL_MS,
    listenerFailoverMs: e.LISTENER_FAILOVER_MS,
    listenerStallMs: e.LISTENER_STALL_MS,
    listenerRetryMaxMs: e.LISTENER_RETRY_MAX_MS,
    listenerTrackedDocsMax: e.LISTENER_TRACKED_DOCS_MAX,
    workflowMaxWatchesPerUser: e.WORKFLOW_MAX_WATCHES_PER_USER,
    publishRetryDelaysMs: e.PUBLISH_RETRY_DELAYS_MS.split(',').map((d) => Number(d.trim())),
    publishOutboxMaxEvents: e.PUBLISH_OUTBOX_MAX_EVENTS,
    publishOutboxMaxBytes: e.PUBLISH_OUTBOX_MAX_BYTES,
    listenBacklog: e.LISTEN_BACKLOG,
    healthPort: e.HEALTH_PORT,
    admissionMaxHandshakes: e.ADMISSION_MAX_HANDSHAKES,
    admissionMaxLagMs: e.ADMISSION_MAX_LAG_MS,
    admissionRetryAfterS: e.ADMISSION_RETRY_AFTER_S,
  };
}

/** The checks of the token settings: what AUTH_MODE needs, and in production what it refuses. */
function tokenProblems(
  e: z.infer<typeof EnvSchema>,
  cleaned: Record<string, string | undefined>,
  production: boolean,
): string[] {
  const problems: string[] = [];
  if (e.AUTH_MODE === 'none' && production) {
    problems.push('  AUTH_MODE: "none" is for development only and is refused when NODE_ENV=production');
  }
  if (e.AUTH_MODE === 'jwt' && !e.JWT_SECRET && !e.JWT_JWKS_URL) {
    problems.push('  JWT_SECRET / JWT_JWKS_URL: AUTH_MODE=jwt needs at least one of them (HS256 secret, or JWKS URL)');
  }
  if (production) problems.push(...weakVerification(e));
  // firebase-admin would start without a project and then refuse every token with no clue why.
  const googleProject = ['GOOGLE_CLOUD_PROJECT', 'GCLOUD_PROJECT', 'GOOGLE_APPLICATION_CREDENTIALS'].some(
    (k) => cleaned[k],
  );
  if (e.AUTH_MODE === 'firebase' && !e.FIREBASE_PROJECT_ID && !googleProject) {
    problems.push(
      '  FIREBASE_PROJECT_ID: AUTH_MODE=firebase needs the Firebase project: set FIREBASE_PROJECT_ID (or GOOGLE_CLOUD_PROJECT, or GOOGLE_APPLICATION_CREDENTIALS naming a service-account key that carries it)',
    );
  }
  return problems;
}

/**
 * Token checks that production refuses because they can be bypassed: a JWKS fetched over plain
 * http (anyone on the network path can serve keys that sign any token; loopback is no path), and
 * firebase-admin pointed at an Auth emulator (it then accepts unsigned ID tokens).
 */
function weakVerification(e: z.infer<typeof EnvSchema>): string[] {
  const problems: string[] = [];
  if (e.AUTH_MODE === 'jwt' && e.JWT_JWKS_URL) {
    const url = new URL(e.JWT_JWKS_URL);
    if (url.protocol === 'http:' && !isLoopback(url.hostname)) {
      problems.push(
        `  JWT_JWKS_URL: http:// is refused when NODE_ENV=production (anyone on the network path to ${url.host} could serve keys that sign any token): use the key set's https:// URL (http:// is allowed only on loopback: localhost, 127.0.0.1, [::1])`,
      );
    }
  }
  if (e.AUTH_MODE === 'firebase' && e.FIREBASE_AUTH_EMULATOR_HOST) {
    problems.push(
      '  FIREBASE_AUTH_EMULATOR_HOST: refused when NODE_ENV=production with AUTH_MODE=firebase (firebase-admin then accepts unsigned ID tokens, naming any user): unset it; the Auth emulator is for tests and local work',
    );
  }
  return problems;
}

/** A URL host name that names this machine: `localhost`, 127.0.0.0/8 or `[::1]`. */
function isLoopback(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname);
}

/** ALLOWED_ORIGINS as a list of origins (undefined when unset); what is wrong with it goes to `problems`. */
function allowedOrigins(value: string | undefined, problems: string[]): string[] | undefined {
  const origins = value
    ?.split(',')
    .map((o) => o.trim())
    .filter(Boolean);
  if (origins?.length === 0) {
    problems.push(
      '  ALLOWED_ORIGINS: lists no origin (it would refuse every browser); unset it, or list origins like https://app.example.com',
    );
  }
  return origins?.map((origin) => {
    // As a browser sends it (`Origin`): lower-case, without the scheme's default port (:443, :80).
    const normal = /^https?:\/\/(\*\.)?[A-Za-z0-9.-]+(:\d+)?$/.test(origin) && originOf(origin);
    if (!normal) {
      problems.push(
        `  ALLOWED_ORIGINS: "${origin}" is not an origin like https://app.example.com or https://*.example.com`,
      );
    }
    return normal || origin;
  });
}

/** `new URL(url).origin`, or undefined when it is no URL (a port past 65535). No `URL.parse` before Node 20.18. */
function originOf(url: string): string | undefined {
  try {
    return new URL(url).origin;
  } catch {
    return undefined;
  }
}

/** Why the service-account key at `path` cannot be used, or undefined when it reads as JSON. */
function unreadableKey(path: string): string | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    return `cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? String(error)}): mount the service-account key there, or unset it`;
  }
  try {
    JSON.parse(text);
  } catch {
    return `${path} is not a JSON service-account key`;
  }
  return undefined;
}
