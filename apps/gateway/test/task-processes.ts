import { join } from 'node:path';
import { type ChildHandle, freePort, PortBusyError, retryBind, startChild } from '@livebus/test-support';

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

/**
 * Starts a gateway on REDIS_URL with tasks on (without Redis when `redisUrl` is undefined), on
 * PORT=0, and waits for its readiness (see {@link gatewayListening}).
 */
export async function startGatewayProcess(
  redisUrl: string | undefined,
  env: Record<string, string> = {},
): Promise<CliProcess> {
  const p = startCli([], {
    PORT: '0',
    ...(redisUrl === undefined ? {} : { REDIS_URL: redisUrl }),
    UNIFIED_REGISTRY_ENABLED: 'true',
    INSTANCE_ID: `gw-${Math.random().toString(36).slice(2, 8)}`,
    SHUTDOWN_GRACE_MS: '2000',
    ...env,
  });
  return gatewayListening(p);
}

/**
 * For a gateway child started with PORT=0 (and LOG_LEVEL info or debug, the default): reads the
 * port from its gateway_listening line and waits for its readiness there. A port probed free
 * beforehand could be taken by another process before the child bound it; this one is the
 * child's own. A child that exits first fails the wait at once, with its stderr.
 */
export async function gatewayListening(p: ChildHandle): Promise<CliProcess> {
  const listening = await p.waitForLine((l) => l.event === 'gateway_listening', 'gateway listening', 20_000);
  const port = listening.port as number;
  const http = `http://127.0.0.1:${port}`;
  await p.waitUntil(async () => (await fetch(`${http}/health/readiness`).catch(() => undefined))?.ok, 'gateway ready');
  return Object.assign(p, { port, http });
}

/**
 * For a gateway child that cannot tell its port (LOG_LEVEL warn or error: no gateway_listening
 * line): `start(port)` spawns it on a port probed free, with INSTANCE_ID `instanceId` (unique to
 * this start). Waits until /healthz on that port names `instanceId`, then for readiness: a
 * gateway of another process that took the port meanwhile is not taken for this one. A child
 * that exits on its port being taken (exit 78) is started again on another port; any other exit
 * fails at once, with its stderr.
 */
export async function startQuietGateway(instanceId: string, start: (port: number) => ChildHandle): Promise<CliProcess> {
  return retryBind(async () => {
    const port = await freePort();
    const p = start(port);
    const http = `http://127.0.0.1:${port}`;
    const answer = async (path: string) => {
      const res = await fetch(`${http}${path}`).catch(() => undefined);
      return res?.ok ? ((await res.json()) as Record<string, unknown>) : undefined;
    };
    try {
      await p.waitUntil(async () => (await answer('/healthz'))?.instance_id === instanceId, `${instanceId} on ${port}`);
      await p.waitUntil(() => answer('/health/readiness'), `${instanceId} ready`);
    } catch (error) {
      await p.stop('SIGKILL');
      if (p.child.exitCode === 78) throw new PortBusyError(port, { cause: error });
      throw error;
    }
    return Object.assign(p, { port, http });
  });
}
