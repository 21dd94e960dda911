import { rpcAndReconnects } from '../../metrics/prometheus';
import { shownRedisUrl } from '../../redis/shown-redis-url';
import { detachSummary } from './detach-summary';
import type { HttpDeps, Routes } from './http-deps';
import { type RequestGuards, send } from './http-io';

/**
 * The operator's endpoints, all behind the admin token: `GET /ws-metrics` (disconnects,
 * detaches, listeners, delivery latency and events/s, RPC errors, reconnects), `GET /metrics` (Prometheus), `GET /cluster` (the fleet's
 * instances) and `GET /debug` (stats, sessions and the configuration, secrets masked).
 */
export function adminRoutes(deps: HttpDeps, guards: RequestGuards): Routes {
  const { config } = deps;
  return {
    'GET /ws-metrics': async (req, res) => {
      guards.requireAdmin(req);
      const c = deps.listenerCounters();
      const { rpc, reconnects } = await rpcAndReconnects(deps.metrics);
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
          delivery: deps.delivery(),
          rpc,
          reconnects,
          companies: deps.companyStats?.(),
        },
      });
    },
    'GET /metrics': async (req, res) => {
      guards.requireAdmin(req);
      const text = await deps.metrics.registry.metrics();
      res.writeHead(200, { 'content-type': deps.metrics.registry.contentType });
      res.end(text);
    },
    'GET /cluster': async (req, res) => {
      guards.requireAdmin(req);
      const now = Date.now();
      const instances = (await deps.clusterInstances()).map((i) => ({
        id: i.id,
        sessions: i.sessions,
        users: i.users,
        uptime_s: Math.round((now - i.startedAt) / 1000),
        version: i.version,
        last_seen_ms_ago: Math.max(0, now - i.lastSeen),
        self: i.id === config.instanceId,
        ...(i.eventsOutPerS === undefined
          ? {}
          : {
              events_in_per_s: i.eventsInPerS,
              events_out_per_s: i.eventsOutPerS,
              delivery_p50_ms: i.deliveryP50Ms,
              delivery_p99_ms: i.deliveryP99Ms,
            }),
      }));
      send(res, 200, { instances });
    },
    'GET /debug': (req, res) => {
      guards.requireAdmin(req);
      const { jwtSecret, adminToken, redisUrl, ...safe } = config;
      send(res, 200, {
        stats: deps.stats(),
        bus: deps.busStats(),
        ...(deps.debugSessions() as object),
        config: {
          ...safe,
          jwtSecret: jwtSecret ? '[set]' : undefined,
          adminToken: adminToken ? '[set]' : undefined,
          redisUrl: redisUrl ? shownRedisUrl(redisUrl) : undefined,
        },
      });
    },
  };
}
