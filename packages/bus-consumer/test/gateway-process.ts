import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { freePort, waitFor } from '@livebus/test-support';

// Real gateway processes for the fault tests: each a child `node dist/main.js`.
const main = require.resolve('@livebus/gateway/package.json').replace(/package\.json$/, 'dist/main.js');

/** A gateway child process with the JSON log lines it wrote. */
export interface GatewayProcess {
  id: string;
  port: number;
  http: string;
  child: ChildProcess;
  exited: Promise<number | null>;
  /** Parsed log lines (LOG_LEVEL=info unless overridden). */
  logs: Array<Record<string, unknown>>;
  /** SIGTERM or SIGKILL; resolves with the exit code. */
  stop(signal: 'SIGTERM' | 'SIGKILL'): Promise<number | null>;
}

/**
 * Starts `node dist/main.js` of the gateway on a free port (or `port`) and waits for readiness
 * (at most `readyTimeoutMs`: a loaded host takes its time loading firebase-admin).
 */
export async function startGatewayProcess(
  id: string,
  env: Record<string, string>,
  port?: number,
  readyTimeoutMs = 15_000,
): Promise<GatewayProcess> {
  const p = port ?? (await freePort());
  const child = spawn(process.execPath, [main], {
    env: {
      PATH: process.env.PATH ?? '',
      PORT: String(p),
      HOST: '127.0.0.1',
      INSTANCE_ID: id,
      INSTANCE_TTL_MS: '1500',
      DETACH_DELAY_MS: '500',
      SHUTDOWN_GRACE_MS: '2000',
      LOG_LEVEL: 'info',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const logs = jsonLines(child);
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  const http = `http://127.0.0.1:${p}`;
  const instance: GatewayProcess = {
    id,
    port: p,
    http,
    child,
    exited,
    logs,
    stop: async (signal) => {
      child.kill(signal);
      return exited;
    },
  };
  await waitFor(
    async () => (await fetch(`${http}/health/readiness`).catch(() => undefined))?.ok,
    `${id} ready`,
    readyTimeoutMs,
    50,
  );
  return instance;
}

/** GET a JSON endpoint: status, body and how long it took. */
export async function getJson(url: string): Promise<{ status: number; body: Record<string, unknown>; ms: number }> {
  const started = performance.now();
  const res = await fetch(url);
  const body = (await res.json().catch(() => ({}))) as Record<string, unknown>;
  return { status: res.status, body, ms: performance.now() - started };
}

/** A `livebus-gateway worker` child process (tasks), with its /healthz port. */
export interface WorkerProcess {
  child: ChildProcess;
  http: string;
  exited: Promise<number | null>;
  logs: Array<Record<string, unknown>>;
}

/** Starts `node dist/main.js worker` of the gateway on REDIS_URL and waits until it listens. */
export async function startWorkerProcess(id: string, env: Record<string, string>): Promise<WorkerProcess> {
  const child = spawn(process.execPath, [main, 'worker'], {
    env: {
      PATH: process.env.PATH ?? '',
      HOST: '127.0.0.1',
      INSTANCE_ID: id,
      WORKER_HTTP_PORT: '0',
      UNIFIED_REGISTRY_ENABLED: 'true',
      LOG_LEVEL: 'info',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const logs = jsonLines(child);
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  const listening = await waitFor(
    () => logs.find((l) => l.event === 'task_worker_listening'),
    `${id} listening`,
    60_000,
  );
  return { child, http: `http://127.0.0.1:${listening.port as number}`, exited, logs };
}

/** The JSON log lines a child process writes to stdout, collected as they come. */
function jsonLines(child: ChildProcess): Array<Record<string, unknown>> {
  const logs: Array<Record<string, unknown>> = [];
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
    try {
      logs.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      // Not a log line.
    }
  });
  return logs;
}
