import { type ChildHandle, freePort, PortBusyError, retryBind, startChild } from '@livebus/test-support';

// Real gateway processes for the fault tests: each a child `node dist/main.js`, run through
// startChild (logs parsed, stderr kept and printed when a test fails or the child crashes).
const main = require.resolve('@livebus/gateway/package.json').replace(/package\.json$/, 'dist/main.js');

/** A gateway child process with the JSON log lines it wrote. */
export interface GatewayProcess extends ChildHandle {
  id: string;
  port: number;
  http: string;
  /** Parsed log lines (LOG_LEVEL=info unless overridden); the same array as `lines`. */
  logs: Array<Record<string, unknown>>;
}

/**
 * Starts `node dist/main.js` of the gateway on a free port (or `port`) and waits for readiness
 * (at most `readyTimeoutMs`: a loaded host takes its time loading firebase-admin). On a given
 * port (a restart in place of a stopped instance) it retries while another process holds it.
 * The port is probed free, not bound by the child (its LOG_LEVEL may hide gateway_listening):
 * the answers count only from a gateway whose /healthz names `id`, not another process's
 * gateway that took the port meanwhile (this child then exits 78 and is started again).
 */
export async function startGatewayProcess(
  id: string,
  env: Record<string, string>,
  port?: number,
  readyTimeoutMs = 15_000,
): Promise<GatewayProcess> {
  if (port !== undefined) return retryBind(() => startOn(id, env, port, readyTimeoutMs));
  return retryBind(async () => startOn(id, env, await freePort(), readyTimeoutMs));
}

/** One start on `port`: PortBusyError when the gateway exits 78 (its port is in use). */
async function startOn(id: string, env: Record<string, string>, port: number, readyTimeoutMs: number) {
  const child = startChild(id, process.execPath, [main], {
    env: {
      PATH: process.env.PATH ?? '',
      PORT: String(port),
      HOST: '127.0.0.1',
      INSTANCE_ID: id,
      INSTANCE_TTL_MS: '1500',
      DETACH_DELAY_MS: '500',
      SHUTDOWN_GRACE_MS: '2000',
      LOG_LEVEL: 'info',
      ...env,
    },
  });
  const http = `http://127.0.0.1:${port}`;
  const answer = async (path: string) => {
    const res = await fetch(`${http}${path}`).catch(() => undefined);
    return res?.ok ? ((await res.json()) as Record<string, unknown>) : undefined;
  };
  try {
    await child.waitUntil(
      async () => (await answer('/healthz'))?.instance_id === id && (await answer('/health/readiness')) !== undefined,
      `${id} ready`,
      readyTimeoutMs,
      50,
    );
  } catch (error) {
    await child.stop('SIGKILL');
    if (child.child.exitCode === 78) throw new PortBusyError(port, { cause: error });
    throw error;
  }
  return Object.assign(child, { id, port, http, logs: child.lines });
}

/** GET a JSON endpoint: status, body and how long it took. */
export async function getJson(url: string): Promise<{ status: number; body: Record<string, unknown>; ms: number }> {
  const started = performance.now();
  const res = await fetch(url);
  const body = (await res.json().catch(() => ({}))) as Record<string, unknown>;
  return { status: res.status, body, ms: performance.now() - started };
}

/** A `livebus-gateway worker` child process (tasks), with its /healthz port. */
export interface WorkerProcess extends ChildHandle {
  http: string;
  /** Parsed log lines; the same array as `lines`. */
  logs: Array<Record<string, unknown>>;
}

/** Starts `node dist/main.js worker` of the gateway on REDIS_URL and waits until it listens. */
export async function startWorkerProcess(id: string, env: Record<string, string>): Promise<WorkerProcess> {
  const child = startChild(id, process.execPath, [main, 'worker'], {
    env: {
      PATH: process.env.PATH ?? '',
      HOST: '127.0.0.1',
      INSTANCE_ID: id,
      WORKER_HTTP_PORT: '0',
      UNIFIED_REGISTRY_ENABLED: 'true',
      LOG_LEVEL: 'info',
      ...env,
    },
  });
  const listening = await child.waitForLine((l) => l.event === 'task_worker_listening', `${id} listening`, 60_000);
  return Object.assign(child, { http: `http://127.0.0.1:${listening.port as number}`, logs: child.lines });
}
