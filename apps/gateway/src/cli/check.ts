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

  if (m) {
    const reasons = (m.reasons_total ?? {}) as Record<string, number>;
    const total = Object.values(reasons).reduce((a, b) => a + num(b), 0);
    const abnormal = num(reasons.abnormal_closure);
    if (total === 0) add('1006 closes', 'no disconnects yet', `< ${pct(THRESHOLDS.abnormalClosureMax)}`, 'skip');
    else {
      const share = abnormal / total;
      add(
        '1006 closes',
        `${pct(share)} (${abnormal} of ${total} disconnects)`,
        `< ${pct(THRESHOLDS.abnormalClosureMax)}`,
        share < THRESHOLDS.abnormalClosureMax ? 'pass' : 'fail',
      );
    }

    const detach = (m.detach ?? {}) as Record<string, number>;
    const decided = num(detach.cancelled) + num(detach.executed);
    const threshold = `>= ${pct(THRESHOLDS.cancelRatioPass)} (warn below, fail < ${pct(THRESHOLDS.cancelRatioFail)})`;
    if (decided === 0) add('detach cancel ratio', 'no detach decided yet', threshold, 'skip');
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
  }

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
    // Reported once the Firestore listeners are wired; older gateways have no such field.
    if ('firestore' in h) {
      const fs = String(h.firestore);
      add('Firestore', fs, 'ok (or disabled)', fs === 'down' ? 'fail' : 'pass');
    } else add('Firestore', 'not reported by this gateway', 'ok (or disabled)', 'skip');
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
