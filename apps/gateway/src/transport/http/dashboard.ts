import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { InstanceInfo } from '../../fleet/presence/presence';
import { EventLoopLagMonitor } from '../../metrics/event-loop-lag';
import { DASHBOARD_SCRIPT, DASHBOARD_STYLE, dashboardHtml } from './dashboard-page';
import { detachSummary } from './detach-summary';
import type { DependencyStatus, HttpDeps, Routes } from './http-deps';

/** How often the dashboard stream pushes a snapshot. */
export const DASHBOARD_INTERVAL_MS = 1_000;

const sha256 = (text: string) => `'sha256-${createHash('sha256').update(text).digest('base64')}'`;
// Only the page's own inline script and style may run: no CDN, no injected markup.
const CSP = [
  "default-src 'none'",
  `script-src ${sha256(DASHBOARD_SCRIPT)}`,
  `style-src ${sha256(DASHBOARD_STYLE)}`,
  "connect-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** The one instance this process knows of, for gateways without a fleet presence. */
function selfInstance(deps: HttpDeps): InstanceInfo {
  const s = deps.stats();
  return {
    id: deps.config.instanceId,
    sessions: s.sessions,
    users: s.users,
    startedAt: deps.startedAt,
    version: deps.version,
    lastSeen: Date.now(),
  };
}

/** What one push of the dashboard stream carries (docs/operations.md, "Dashboard"). */
export async function dashboardSnapshot(deps: HttpDeps, lag: EventLoopLagMonitor) {
  const c = deps.listenerCounters();
  const s = deps.stats();
  const m = deps.tracker.snapshot(10);
  const instances = await (deps.clusterInstances?.() ?? Promise.resolve([selfInstance(deps)])).catch(() => [
    selfInstance(deps),
  ]);
  const queueDepth = await (deps.taskQueueDepth?.() ?? Promise.resolve(null)).catch(() => null);
  const firestore: DependencyStatus = deps.firestoreStatus?.() ?? 'disabled';
  const delivery = deps.delivery();
  return {
    at: Date.now(),
    instance_id: deps.config.instanceId,
    version: deps.version,
    uptime_s: Math.round((Date.now() - deps.startedAt) / 1000),
    self: { connections: s.connections, sessions: s.sessions, users: s.users, draining: s.draining },
    instances,
    disconnects: { history: deps.tracker.history(), reasons_total: m.reasons_total },
    top_disconnects: m.top_disconnects,
    frequent_disconnects: m.frequent_disconnects,
    detach: detachSummary(c),
    listeners_count: c.attached,
    workflow_listeners_count: c.workflows,
    registry_cleanup_errors: c.cleanupErrors,
    firestore_reads: deps.firestoreReads?.() ?? null,
    event_loop_lag_ms: lag.read(),
    redis: deps.redisStatus(),
    firestore,
    task_queue_depth: queueDepth,
    delivery: {
      events_in_per_s: delivery.in_per_s,
      events_out_per_s: delivery.out_per_s,
      recent: delivery.recent,
      history: deps.throughputHistory(),
    },
    fleet: fleetThroughput(instances),
  };
}

/**
 * The fleet's events per second (each instance's last announcement, summed) and its
 * worst delivery p99: percentiles do not add up, so the fleet shows the highest.
 * Instances that announce no figures (older versions) are left out and counted.
 */
export function fleetThroughput(instances: readonly InstanceInfo[]) {
  const reporting = instances.filter((i) => i.eventsOutPerS !== undefined);
  const sum = (pick: (i: InstanceInfo) => number | undefined) =>
    Math.round(reporting.reduce((a, i) => a + (pick(i) ?? 0), 0) * 10) / 10;
  const p99s = reporting.map((i) => i.deliveryP99Ms).filter((p): p is number => typeof p === 'number');
  return {
    instances_reporting: reporting.length,
    events_in_per_s: sum((i) => i.eventsInPerS),
    events_out_per_s: sum((i) => i.eventsOutPerS),
    delivery_p99_ms_max: p99s.length ? Math.max(...p99s) : null,
  };
}

/**
 * `GET /dashboard` (the page: static, no data, no build step, nothing from a CDN)
 * and `GET /dashboard/stream` (server-sent events, admin token). The page asks
 * for the token and sends it in the Authorization header of a streamed fetch,
 * never in a URL, so it stays out of ALB and proxy access logs.
 */
export function createDashboardRoutes(deps: HttpDeps, requireAdmin: (req: IncomingMessage) => void) {
  const lag = new EventLoopLagMonitor();
  const page = dashboardHtml();
  const routes: Routes = {
    'GET /dashboard': (_req, res) => {
      res.writeHead(200, {
        'content-type': 'text/html; charset=utf-8',
        'cache-control': 'no-store',
        'content-security-policy': CSP,
        'x-content-type-options': 'nosniff',
        'referrer-policy': 'no-referrer',
      });
      res.end(page);
    },
    'GET /dashboard/stream': (req, res) => {
      requireAdmin(req);
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        // Proxies that buffer (nginx) would hold the stream back.
        'x-accel-buffering': 'no',
      });
      let busy = false;
      const push = () => {
        // A draining gateway ends the stream so that shutdown does not wait for it.
        if (deps.isDraining()) res.end();
        if (busy || res.destroyed || res.writableEnded) return;
        busy = true;
        dashboardSnapshot(deps, lag)
          .then((snap) => res.write(`data: ${JSON.stringify(snap)}\n\n`))
          .catch((error: unknown) =>
            deps.logger.error('http_handler_error', { path: '/dashboard/stream', error: String(error) }),
          )
          .finally(() => {
            busy = false;
          });
      };
      push();
      const timer = setInterval(push, DASHBOARD_INTERVAL_MS);
      res.on('close', () => clearInterval(timer));
    },
  };
  return routes;
}
