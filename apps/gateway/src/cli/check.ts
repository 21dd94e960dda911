/** Verdict of one post-deploy check: `warn` is printed but does not fail the run; `skip` means not measurable yet. */
export type Verdict = 'pass' | 'warn' | 'fail' | 'skip';

/** One line of `livebus-gateway check`. */
export interface CheckResult {
  name: string;
  /** What was measured, e.g. `3.2 % (4 of 125)`. */
  value: string;
  /** The rule the value is judged by, e.g. `< 10 %`. */
  threshold: string;
  verdict: Verdict;
}

/** Options of {@link runChecks}. */
export interface CheckOptions {
  /** Base URL of the deployment, e.g. `https://rt.example.com` (a `ws(s)://…/ws` URL is accepted too). */
  url: string;
  adminToken?: string;
  /** Per request. @default 5_000 */
  timeoutMs?: number;
  /**
   * With tasks on and no worker seen, how long `/healthz` is polled for one before the
   * check fails (workers may still be starting right after a deploy).
   * @default 30_000
   */
  workerWaitMs?: number;
  /** How often `/healthz` is polled while waiting for a worker. @default 2_000 */
  workerPollMs?: number;
}

/** Fields every `/healthz` answer carries (docs/operations.md). */
export const HEALTHZ_FIELDS = [
  'status',
  'version',
  'instance_id',
  'listeners_count',
  'workflow_listeners_count',
  'redis',
  'uptime_s',
  'connections',
  'sessions',
  'draining',
] as const;

/** Thresholds of the checks, shared with docs/runbook.md. */
export const THRESHOLDS = {
  /** Share of disconnects that are 1006 (abnormal closure) above which the check fails. */
  abnormalClosureMax: 0.1,
  /** Detach cancel ratio at or above which the check passes. */
  cancelRatioPass: 0.3,
  /** Detach cancel ratio below which the check fails; between the two it warns. */
  cancelRatioFail: 0.2,
  /**
   * Fewest disconnects (for the 1006 share) and decided detaches (for the cancel ratio)
   * a ratio is judged on: below it one event swings the ratio by 5 % or more, so the
   * check says SKIP with the count instead.
   */
  minSample: 20,
  /** With tasks on, how long without a worker the check waits before it fails (ms). */
  workerWaitMs: 30_000,
  /** Listener delivery (Firestore change to socket): p99 below this passes (the old system's bar). */
  listenerP99Ms: 100,
  /** Fewest listener deliveries the p99 is judged on: below 100 the "p99" is just the slowest one. */
  latencyMinSample: 100,
  /** Share of RPC calls failing on the server's side (internal, unavailable, timeout) at or above which it warns. */
  rpcErrorWarn: 0.01,
  /** ... and at or above which it fails. */
  rpcErrorFail: 0.05,
  /** Share of reconnects that got `gap` (events lost to them) at or above which it warns. */
  reconnectGapWarn: 0.05,
} as const;

interface Fetched {
  status: number;
  body: Record<string, unknown> | undefined;
  error?: string;
}

const pct = (x: number) => `${(x * 100).toFixed(1)} %`;
const num = (x: unknown) => (typeof x === 'number' && Number.isFinite(x) ? x : 0);

/** `wss://host/ws` and `https://host/` both name the deployment `https://host`. */
export function baseUrlOf(url: string): string {
  const u = new URL(url);
  if (u.protocol === 'ws:') u.protocol = 'http:';
  if (u.protocol === 'wss:') u.protocol = 'https:';
  if (u.pathname.endsWith('/ws')) u.pathname = u.pathname.slice(0, -3);
  return u.toString().replace(/\/+$/, '');
}

async function get(base: string, path: string, options: CheckOptions): Promise<Fetched> {
  try {
    const res = await fetch(`${base}${path}`, {
      headers: options.adminToken ? { authorization: `Bearer ${options.adminToken}` } : {},
      signal: AbortSignal.timeout(options.timeoutMs ?? 5_000),
    });
    const text = await res.text();
    let body: Record<string, unknown> | undefined;
    try {
      body = JSON.parse(text) as Record<string, unknown>;
    } catch {
      body = undefined;
    }
    return { status: res.status, body };
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause?.code;
    return { status: 0, body: undefined, error: cause ?? (error as Error).message };
  }
}

const unreachable = (f: Fetched) => (f.status === 0 ? `unreachable (${f.error})` : `HTTP ${f.status}`);

/**
 * The post-deploy checks of docs/runbook.md against a running deployment. Only
 * reads public and admin endpoints; never connects a WebSocket, so it does not
 * disturb the numbers it judges.
 */
export async function runChecks(options: CheckOptions): Promise<CheckResult[]> {
  const base = baseUrlOf(options.url);
  const [healthz, metrics, readiness, cluster] = await Promise.all([
    get(base, '/healthz', options),
    get(base, '/ws-metrics', options),
    get(base, '/health/readiness', options),
    get(base, '/cluster', options),
  ]);
  const results: CheckResult[] = [];
  const add = (name: string, value: string, threshold: string, verdict: Verdict) =>
    results.push({ name, value, threshold, verdict });

  const h = healthz.body;
  if (healthz.status !== 200 || !h) {
    add('/healthz', unreachable(healthz), '200 with every field', 'fail');
  } else {
    const missing = HEALTHZ_FIELDS.filter((f) => !(f in h));
    add(
      '/healthz',
      missing.length ? `missing ${missing.join(', ')}` : `ok, ${HEALTHZ_FIELDS.length} fields, version ${h.version}`,
      '200 with every field',
      missing.length || h.status !== 'ok' ? 'fail' : 'pass',
    );
  }

  const m = metrics.body?.metrics as Record<string, unknown> | undefined;
  if (metrics.status === 401) {
    add('/ws-metrics', 'HTTP 401: the admin token is missing or wrong', '200', 'fail');
  } else if (metrics.status !== 200 || !m) {
    add('/ws-metrics', unreachable(metrics), '200', 'fail');
  } else {
    add('/ws-metrics', 'ok', '200', 'pass');
  }

  if (m) results.push(...judgeMetrics(m));

  const r = readiness.body;
  add(
    'readiness',
    readiness.status === 200 ? 'ready' : r ? `HTTP ${readiness.status} ${JSON.stringify(r)}` : unreachable(readiness),
    '200',
    readiness.status === 200 ? 'pass' : 'fail',
  );

  if (h) {
    const redis = String(h.redis);
    add('Redis', redis, 'ok (or disabled without REDIS_URL)', redis === 'down' ? 'fail' : 'pass');
    results.push(judgeFirestore(h));
    results.push(await judgeTasks(h, base, options));
  }

  const instances = Array.isArray(cluster.body?.instances)
    ? (cluster.body.instances as Array<{ id?: string; version?: string }>)
    : h
      ? [{ id: String(h.instance_id), version: String(h.version) }]
      : [];
  if (instances.length === 0) add('versions', 'no instance answered', 'one version', 'fail');
  else {
    const versions = [...new Set(instances.map((i) => String(i.version)))];
    const source = cluster.status === 200 ? `${instances.length} instance(s) from /cluster` : 'this instance only';
    // Mixed versions are expected for the minutes of a rolling deploy, so they warn rather than fail.
    add(
      'versions',
      `${versions.join(', ')} (${source})`,
      'one version across instances',
      versions.length === 1 ? 'pass' : 'warn',
    );
  }
  return results;
}

const tooFew = (count: number, what: string) => `${count} ${what}, fewer than ${THRESHOLDS.minSample}: not judged yet`;

/** The ratios of `/ws-metrics`, each judged only on a sample of {@link THRESHOLDS.minSample} or more. */
function judgeMetrics(m: Record<string, unknown>): CheckResult[] {
  const results: CheckResult[] = [];
  const add = (name: string, value: string, threshold: string, verdict: Verdict) =>
    results.push({ name, value, threshold, verdict });

  const reasons = (m.reasons_total ?? {}) as Record<string, number>;
  const total = Object.values(reasons).reduce((a, b) => a + num(b), 0);
  const abnormal = num(reasons.abnormal_closure);
  const closes = `< ${pct(THRESHOLDS.abnormalClosureMax)} (of ${THRESHOLDS.minSample}+ disconnects)`;
  if (total < THRESHOLDS.minSample) add('1006 closes', tooFew(total, 'disconnects'), closes, 'skip');
  else {
    const share = abnormal / total;
    add(
      '1006 closes',
      `${pct(share)} (${abnormal} of ${total} disconnects)`,
      closes,
      share < THRESHOLDS.abnormalClosureMax ? 'pass' : 'fail',
    );
  }

  const detach = (m.detach ?? {}) as Record<string, number>;
  const decided = num(detach.cancelled) + num(detach.executed);
  const threshold = `>= ${pct(THRESHOLDS.cancelRatioPass)} (warn below, fail < ${pct(THRESHOLDS.cancelRatioFail)}; of ${THRESHOLDS.minSample}+ detaches)`;
  if (decided < THRESHOLDS.minSample) add('detach cancel ratio', tooFew(decided, 'detaches'), threshold, 'skip');
  else {
    const ratio = num(detach.cancelled) / decided;
    add(
      'detach cancel ratio',
      `${pct(ratio)} (${num(detach.cancelled)} cancelled, ${num(detach.executed)} executed)`,
      threshold,
      ratio >= THRESHOLDS.cancelRatioPass ? 'pass' : ratio >= THRESHOLDS.cancelRatioFail ? 'warn' : 'fail',
    );
  }

  const cleanupErrors = num(m.registry_cleanup_errors);
  add('registry cleanup errors', String(cleanupErrors), '0', cleanupErrors === 0 ? 'pass' : 'fail');
  results.push(judgeListenerLatency(m), judgeRpcErrors(m), judgeReconnects(m));
  return results;
}

const notReported = (name: string, threshold: string): CheckResult => ({
  name,
  value: 'not reported by this gateway',
  threshold,
  verdict: 'skip',
});

/**
 * `/healthz`'s Firestore: `down` (an outage) fails; listeners failing on a query Firestore refuses
 * (`firestore_refused`: a missing index, the rules) warn, as the fix is in the index, the rules or
 * LISTENERS_FILE, not in the deploy; older gateways without the field are skipped.
 */
export function judgeFirestore(h: Record<string, unknown>): CheckResult {
  const threshold = 'ok (or disabled), no query refused';
  if (!('firestore' in h))
    return { name: 'Firestore', value: 'not reported by this gateway', threshold, verdict: 'skip' };
  const status = String(h.firestore);
  const refused = num(h.firestore_refused);
  if (status === 'down') return { name: 'Firestore', value: status, threshold, verdict: 'fail' };
  if (refused > 0) {
    const value = `${status}, ${refused} listener(s) failing on a query Firestore refuses (livebus_listener_queries_failing{kind})`;
    return { name: 'Firestore', value, threshold, verdict: 'warn' };
  }
  return { name: 'Firestore', value: status, threshold, verdict: 'pass' };
}

/**
 * Listener delivery p99 (a Firestore change's update time to its frame on a socket, on
 * the answering instance since it started) under the old system's 100 ms: judged as
 * "99 % within 100 ms", which the histogram reads exactly (0.1 s is one of its bounds).
 */
export function judgeListenerLatency(m: Record<string, unknown>): CheckResult {
  const name = 'listener delivery p99';
  const threshold = `< ${THRESHOLDS.listenerP99Ms} ms (of ${THRESHOLDS.latencyMinSample}+ listener events)`;
  const delivery = m.delivery as { since_start?: Record<string, Record<string, unknown>> } | undefined;
  const l = delivery?.since_start?.listeners;
  if (!l) return notReported(name, threshold);
  const count = num(l.count);
  if (count < THRESHOLDS.latencyMinSample) {
    return {
      name,
      value: `${count} listener events, fewer than ${THRESHOLDS.latencyMinSample}: not judged yet`,
      threshold,
      verdict: 'skip',
    };
  }
  const within = num(l.within_100ms);
  return {
    name,
    value: `${num(l.p99_ms)} ms, p50 ${num(l.p50_ms)} ms (${pct(within)} of ${count} within ${THRESHOLDS.listenerP99Ms} ms)`,
    threshold,
    verdict: within >= 0.99 ? 'pass' : 'fail',
  };
}

/** RPC calls that failed on the server's side (internal, unavailable, timeout); the caller's own errors are shown, not judged. */
export function judgeRpcErrors(m: Record<string, unknown>): CheckResult {
  const name = 'RPC error rate';
  const threshold = `< ${pct(THRESHOLDS.rpcErrorWarn)} server errors (warn below ${pct(THRESHOLDS.rpcErrorFail)}; of ${THRESHOLDS.minSample}+ calls)`;
  const rpc = m.rpc as Record<string, unknown> | undefined;
  if (!rpc) return notReported(name, threshold);
  const calls = num(rpc.calls);
  if (calls < THRESHOLDS.minSample) return { name, value: tooFew(calls, 'calls'), threshold, verdict: 'skip' };
  const errors = num(rpc.server_errors);
  const rate = errors / calls;
  return {
    name,
    value: `${pct(rate)} (${errors} of ${calls} calls; ${num(rpc.caller_errors)} refused as the caller's error)`,
    threshold,
    verdict: rate < THRESHOLDS.rpcErrorWarn ? 'pass' : rate < THRESHOLDS.rpcErrorFail ? 'warn' : 'fail',
  };
}

/** Sessions that came back with a cursor, and the share that lost events (`gap`): shown, warned on, never failed. */
export function judgeReconnects(m: Record<string, unknown>): CheckResult {
  const name = 'reconnects';
  const threshold = `gap < ${pct(THRESHOLDS.reconnectGapWarn)} of reconnects (warn above; of ${THRESHOLDS.minSample}+)`;
  const r = m.reconnects as Record<string, unknown> | undefined;
  if (!r) return notReported(name, threshold);
  const gap = num(r.gap);
  const total = num(r.resumed) + gap;
  if (total < THRESHOLDS.minSample) return { name, value: tooFew(total, 'reconnects'), threshold, verdict: 'skip' };
  const share = gap / total;
  return {
    name,
    value: `${total} (${num(r.resumed)} resumed, ${gap} gap: ${pct(share)})`,
    threshold,
    verdict: share < THRESHOLDS.reconnectGapWarn ? 'pass' : 'warn',
  };
}

interface TasksHealth {
  enabled?: boolean;
  queue?: string;
  workers?: number;
}

/**
 * With tasks on, jobs need a worker: none seen now, `/healthz` is polled for
 * `workerWaitMs` (workers may be starting with the deploy); none then means the
 * queued jobs wait forever, a failure.
 */
async function judgeTasks(h: Record<string, unknown>, base: string, options: CheckOptions): Promise<CheckResult> {
  const waitMs = options.workerWaitMs ?? THRESHOLDS.workerWaitMs;
  const threshold = `a worker seen within ${waitMs / 1000} s (tasks on)`;
  const result = (value: string, verdict: Verdict): CheckResult => ({
    name: 'task workers',
    value,
    threshold,
    verdict,
  });
  const tasks = h.tasks as TasksHealth | undefined;
  if (!tasks) return result('not reported by this gateway', 'skip');
  if (!tasks.enabled) return result('tasks off', 'skip');
  const seen = (t: TasksHealth | undefined) => num(t?.workers) > 0;
  const deadline = Date.now() + waitMs;
  let last = tasks;
  while (!seen(last) && Date.now() < deadline) {
    await new Promise((r) =>
      setTimeout(r, Math.min(options.workerPollMs ?? 2_000, Math.max(0, deadline - Date.now()))),
    );
    last = ((await get(base, '/healthz', options)).body?.tasks as TasksHealth | undefined) ?? last;
  }
  if (seen(last)) return result(`${num(last.workers)} (${String(last.queue)})`, 'pass');
  return result(`0 for ${waitMs / 1000} s: queued jobs never run (start the worker service)`, 'fail');
}

/** The report as printed: one aligned line per check, then a summary. */
export function formatReport(results: readonly CheckResult[]): string {
  const w = Math.max(...results.map((r) => r.name.length));
  const v = Math.max(...results.map((r) => r.value.length));
  const lines = results.map(
    (r) => `${r.verdict.toUpperCase().padEnd(4)}  ${r.name.padEnd(w)}  ${r.value.padEnd(v)}  threshold: ${r.threshold}`,
  );
  const count = (x: Verdict) => results.filter((r) => r.verdict === x).length;
  lines.push('', `${count('pass')} passed, ${count('warn')} warned, ${count('fail')} failed, ${count('skip')} skipped`);
  return `${lines.join('\n')}\n`;
}
