import { join } from 'node:path';
import { type ChildHandle, startChild } from '@livebus/test-support';

// The built CLI as ECS runs it: `node dist/main.js` (a gateway) and `node dist/main.js worker`.
const main = join(__dirname, '..', 'dist', 'main.js');

/** A gateway or worker child process (see startChild: logs parsed, stderr kept for failures). */
export interface CliProcess extends ChildHandle {
  /** The HTTP port: /healthz, and /ws for a gateway. */
  port: number;
  /** `http://127.0.0.1:<port>`. */
  http: string;
}

/**
 * Spawns `node dist/main.js <args>` with only PATH, HOST=127.0.0.1 and `env` in its environment.
 * `exits`: the run is meant to end on its own (a start-up that must fail), not a crash.
 */
export function startCli(args: string[], env: Record<string, string>, options: { exits?: boolean } = {}): ChildHandle {
  const name = args[0] ?? env.INSTANCE_ID ?? 'gateway';
  return startChild(name, process.execPath, [main, ...args], {
    env: { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', ...env },
    exits: options.exits,
  });
}

/**
 * Starts `livebus-gateway worker` on REDIS_URL with tasks on and a free /healthz port.
 * Its job lock lasts 10 s (renewed every 5 s): a worker starved for a second under load keeps
 * its jobs (with a short lock one would run twice). A test about a lock that lapses (a worker
 * killed mid-job) passes a short TASK_LOCK_MS to the workers it starts for it.
 */
export async function startWorker(redisUrl: string, env: Record<string, string> = {}): Promise<CliProcess> {
  const p = startCli(['worker'], {
    REDIS_URL: redisUrl,
    UNIFIED_REGISTRY_ENABLED: 'true',
    WORKER_HTTP_PORT: '0',
    TASK_LOCK_MS: '10000',
    TASK_STAGE_DELAY_MS: '250',
    SHUTDOWN_GRACE_MS: '3000',
    INSTANCE_ID: `worker-${Math.random().toString(36).slice(2, 8)}`,
    ...env,
  });
  const listening = await p.waitForLine((l) => l.event === 'task_worker_listening', 'worker listening', 20_000);
  const port = listening.port as number;
  return Object.assign(p, { port, http: `http://127.0.0.1:${port}` });
}

/** Starts a gateway on REDIS_URL with tasks on, on a free port, and waits for its readiness. */
export async function startGatewayProcess(redisUrl: string, env: Record<string, string> = {}): Promise<CliProcess> {
  const p = startCli([], {
    PORT: '0',
    REDIS_URL: redisUrl,
    UNIFIED_REGISTRY_ENABLED: 'true',
    INSTANCE_ID: `gw-${Math.random().toString(36).slice(2, 8)}`,
    SHUTDOWN_GRACE_MS: '2000',
    ...env,
  });
  const listening = await p.waitForLine((l) => l.event === 'gateway_listening', 'gateway listening', 20_000);
  const port = listening.port as number;
  const http = `http://127.0.0.1:${port}`;
  await p.waitUntil(async () => (await fetch(`${http}/health/readiness`).catch(() => undefined))?.ok, 'gateway ready');
  return Object.assign(p, { port, http });
}
