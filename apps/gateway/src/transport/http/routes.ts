import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import {
  type AppEvent,
  AppEventSchema,
  parseJsonText,
  protocolDefaults,
  RpcErrorCode,
  toFrameIssues,
  UserIdSchema,
} from '@livebus/protocol';
import { PublishError } from '@livebus/publisher';
import { z } from 'zod';
import { AuthError, type Authenticator, type Principal } from '../../auth/authenticator';
import type { GatewayConfig } from '../../config';
import type { EventBusStats, Publication, StoredEvent } from '../../fleet/bus/event-bus';
import { InvalidEventError } from '../../fleet/bus/invalid-event-error';
import type { InstanceInfo } from '../../fleet/presence/presence';
import type { RegistryStore } from '../../fleet/registry/registry-store';
import type { DependencyStatus, GatewayStats } from '../../gateway';
import type { ListenerSourceStats } from '../../listeners/listener-source';
import type { ListenerCounters } from '../../listeners/listeners-manager';
import type { Logger } from '../../logger';
import type { DisconnectTracker } from '../../metrics/disconnect-tracker';
import type { GatewayMetrics } from '../../metrics/prometheus';
import type { Dispatch } from '../../rpc/dispatcher';
import { httpStatusOf, toRpcError } from '../../rpc/rpc-error';
import { createDashboardRoutes } from './dashboard';
import { detachSummary } from './detach-summary';
import { healthAnswers } from './health';

/** What the HTTP endpoints read from the gateway. */
export interface HttpDeps {
  config: GatewayConfig;
  logger: Logger;
  auth: Authenticator;
  dispatch: Dispatch;
  metrics: GatewayMetrics;
  tracker: DisconnectTracker;
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
  /** Firestore health (dashboard); unset: `disabled`. */
  firestoreStatus?: () => DependencyStatus;
  /** Firestore document reads since start (dashboard); unset: not measured. */
  firestoreReads?: () => number;
  /** Tasks waiting in the queue (dashboard); unset: no task queue. */
  taskQueueDepth?: () => Promise<number>;
  /** The `tasks` block of /healthz (enabled, queue kind, workers seen). */
  taskHealth?: () => unknown;
}

const RpcBodySchema = z.strictObject({ method: z.string().min(1), args: z.array(z.json()).default([]) });
const OnePublicationSchema = z.strictObject({ user_id: UserIdSchema, event: AppEventSchema });
/** Largest batch one `POST /publish` may carry. */
const MAX_BATCH = 1_000;
const PublishBatchSchema = z.strictObject({ events: z.array(OnePublicationSchema).min(1).max(MAX_BATCH) });
/** One schema per shape, picked by the `events` key, so that issues name the exact path. */
const publishBodySchemaFor = (body: unknown) =>
  body !== null && typeof body === 'object' && 'events' in body ? PublishBatchSchema : OnePublicationSchema;

const queued = Symbol('queued');

/** The stored events, or `queued` when they are still waiting for Redis after `afterMs`. */
function storedOrQueued<T>(stored: Promise<T>, afterMs: number): Promise<T | typeof queued> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      // Whatever happens to them now is counted and logged by the outbox (`publish_outbox`).
      stored.catch(() => {});
      resolve(queued);
    }, afterMs);
    stored.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

class HttpError extends Error {
  readonly status: number;
  readonly body: Record<string, unknown>;
  constructor(status: number, code: string, message: string, extra: Record<string, unknown> = {}) {
    super(message);
    this.status = status;
    this.body = { error: { code, message, ...extra } };
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(text);
}

function bearer(req: IncomingMessage): string | undefined {
  const header = req.headers.authorization;
  return header?.startsWith('Bearer ') ? header.slice(7).trim() || undefined : undefined;
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

async function readJson(req: IncomingMessage, maxBytes: number): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > maxBytes) throw new HttpError(413, 'too_large', `body larger than ${maxBytes} bytes`);
    chunks.push(chunk as Buffer);
  }
  // Depth is checked before JSON.parse and the schemas see the value: hostile nesting is a 400, never a crash.
  const parsed = parseJsonText(Buffer.concat(chunks).toString('utf8'));
  if (parsed.ok) return parsed.value;
  if (parsed.error.kind === 'too_deep') {
    throw new HttpError(400, 'too_deep', `body nested deeper than ${protocolDefaults.maxJsonDepth} levels`);
  }
  throw new HttpError(400, 'bad_json', 'body is not valid JSON');
}

/** The gateway's HTTP endpoints (everything but the /ws upgrade). */
export function createHttpHandler(deps: HttpDeps): RequestListener {
  const { config } = deps;

  /** Admin endpoints: the ADMIN_TOKEN when one is set (it must be in production). */
  const requireAdmin = (req: IncomingMessage) => {
    if (!config.adminToken) return;
    const token = bearer(req);
    if (!token || !safeEqual(token, config.adminToken))
      throw new HttpError(401, 'unauthenticated', 'admin token required');
  };

  const principalOf = async (req: IncomingMessage): Promise<Principal> => {
    const token = bearer(req);
    if (!token) throw new HttpError(401, 'unauthenticated', 'bearer token required', { reason: 'missing_token' });
    try {
      return await deps.auth.authenticate({ token });
    } catch (error) {
      if (error instanceof AuthError) {
        deps.logger.warn('http_auth_failed', { reason: error.reason, code: error.code, error: error.message });
        // The same machine-readable reason as a 4001 close.
        throw new HttpError(401, 'unauthenticated', 'invalid token', { reason: error.code });
      }
      throw error;
    }
  };

  const health = healthAnswers(deps);

  const routes: Record<string, (req: IncomingMessage, res: ServerResponse) => Promise<void> | void> = {
    ...createDashboardRoutes(deps, requireAdmin),
    // Liveness never fails on a dependency blip: ECS would replace every task at once.
    'GET /healthz': (_req, res) => {
      const { status, body } = health.healthz();
      send(res, status, body);
    },
    'GET /health/liveness': (_req, res) => send(res, 200, { status: 'ok' }),
    'GET /health/readiness': (_req, res) => {
      const { status, body } = health.readiness();
      send(res, status, body);
    },
    'GET /ws-metrics': (req, res) => {
      requireAdmin(req);
      const c = deps.listenerCounters();
      send(res, 200, {
        status: 'ok',
        metrics: {
          ...deps.tracker.snapshot(),
          detach: detachSummary(c),
          listeners_count: c.attached,
          workflow_listeners_count: c.workflows,
          registry_cleanup_errors: c.cleanupErrors,
          registry_cleanups: c.cleanups,
          registry_cleanups_skipped: c.cleanupsSkipped,
          listener_reads: deps.listenerStats?.()?.reads,
        },
      });
    },
    'GET /metrics': async (req, res) => {
      requireAdmin(req);
      const text = await deps.metrics.registry.metrics();
      res.writeHead(200, { 'content-type': deps.metrics.registry.contentType });
      res.end(text);
    },
    'GET /cluster': async (req, res) => {
      requireAdmin(req);
      const now = Date.now();
      const instances = (await deps.clusterInstances()).map((i) => ({
        id: i.id,
        sessions: i.sessions,
        users: i.users,
        uptime_s: Math.round((now - i.startedAt) / 1000),
        version: i.version,
        last_seen_ms_ago: Math.max(0, now - i.lastSeen),
        self: i.id === config.instanceId,
      }));
      send(res, 200, { instances });
    },
    'GET /debug': (req, res) => {
      requireAdmin(req);
      const { jwtSecret, adminToken, redisUrl, ...safe } = config;
      send(res, 200, {
        stats: deps.stats(),
        bus: deps.busStats(),
        ...(deps.debugSessions() as object),
        config: {
          ...safe,
          jwtSecret: jwtSecret ? '[set]' : undefined,
          adminToken: adminToken ? '[set]' : undefined,
          redisUrl: redisUrl ? redisUrl.replace(/\/\/[^@/]*@/, '//***@') : undefined,
        },
      });
    },
    'POST /rpc': async (req, res) => {
      const principal = await principalOf(req);
      const body = RpcBodySchema.safeParse(await readJson(req, config.maxPayloadBytes));
      if (!body.success)
        throw new HttpError(400, 'bad_request', 'body must be { method, args }', { issues: toFrameIssues(body.error) });
      try {
        const result = await deps.dispatch({ principal, transport: 'http' }, body.data.method, body.data.args);
        send(res, 200, { result });
      } catch (error) {
        const e = toRpcError(error);
        send(res, httpStatusOf(e.code), { error: e.toWire() });
      }
    },
    'POST /publish': async (req, res) => {
      const token = bearer(req);
      // Like the other admin endpoints, open when no ADMIN_TOKEN is set (never in production).
      const isAdmin = !config.adminToken || Boolean(token && safeEqual(token, config.adminToken));
      if (!isAdmin) {
        const principal = await principalOf(req);
        if (!principal.service)
          throw new HttpError(403, RpcErrorCode.Forbidden, 'publishing needs the admin token or a service token');
      }
      const raw = await readJson(req, config.maxPayloadBytes);
      const body = publishBodySchemaFor(raw).safeParse(raw);
      if (!body.success) {
        throw new HttpError(
          400,
          'invalid_event',
          `body must be { user_id, event: { event, data } } or { events: [ { user_id, event }, ... ] } (at most ${MAX_BATCH})`,
          { issues: toFrameIssues(body.error) },
        );
      }
      // A publish that outlives its retries waits in the outbox until Redis returns: the
      // caller hears 202 `queued` then rather than holding the request through the outage.
      const queuedAfterMs = config.publishRetryDelaysMs.reduce((a, b) => a + b, 0) + 250;
      try {
        if ('events' in body.data) {
          const items = body.data.events.map((e) => ({ userId: e.user_id, event: e.event as AppEvent }));
          const stored = await storedOrQueued(deps.publishMany(items), queuedAfterMs);
          if (stored === queued) send(res, 202, { accepted: true, queued: true });
          else send(res, 202, { accepted: true, cursors: stored.map((e) => e.cursor) });
        } else {
          const stored = await storedOrQueued(
            deps.publish(body.data.user_id, body.data.event as AppEvent),
            queuedAfterMs,
          );
          if (stored === queued) send(res, 202, { accepted: true, queued: true });
          else send(res, 202, { accepted: true, cursor: stored.cursor });
        }
      } catch (error) {
        if (error instanceof InvalidEventError) {
          throw new HttpError(400, 'invalid_event', error.message, { issues: error.issues });
        }
        // Refused without being queued (outbox full): the caller must know the event is not coming.
        if (error instanceof PublishError) {
          throw new HttpError(503, RpcErrorCode.Unavailable, error.message, { reason: error.code });
        }
        throw error;
      }
    },
  };

  return (req, res) => {
    // Last resort: whatever a route throws answers only this request, and the process keeps serving.
    const fail = (error: unknown) => {
      if (error instanceof HttpError) {
        if (!res.headersSent) send(res, error.status, error.body);
        return;
      }
      deps.logger.error('http_handler_error', { method: req.method, path: pathOf(req), error: String(error) });
      if (res.headersSent) res.destroy();
      else send(res, 500, { error: { code: 'internal', message: 'internal error' } });
    };
    try {
      const path = pathOf(req);
      const route = routes[`${req.method} ${path}`];
      if (!route) {
        send(res, 404, { error: { code: 'not_found', message: `no route ${req.method} ${path}` } });
        return;
      }
      Promise.resolve()
        .then(() => route(req, res))
        .catch(fail);
    } catch (error) {
      fail(error);
    }
  };
}

function pathOf(req: IncomingMessage): string {
  return (req.url ?? '/').split('?')[0] ?? '/';
}
