import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { waitFor } from '@livebus/test-support';

// The built CLI as ECS runs it: `node dist/main.js` (a gateway) and `node dist/main.js worker`.
const main = join(__dirname, '..', 'dist', 'main.js');

/** A gateway or worker child process, its JSON log lines parsed. */
export interface CliProcess {
  child: ChildProcess;
  lines: Record<string, unknown>[];
  /** Resolves with the exit code (null after a signal). */
  exited: Promise<number | null>;
  /** The HTTP port: /healthz, and /ws for a gateway. */
  port: number;
  /** `http://127.0.0.1:<port>`. */
  http: string;
  /** What the process wrote to stderr (a crash's stack trace). */
  stderr(): string;
}

/** Spawns `node dist/main.js <args>` with only PATH, HOST=127.0.0.1 and `env` in its environment. */
export function startCli(args: string[], env: Record<string, string>): Omit<CliProcess, 'port' | 'http'> {
  const child = spawn(process.execPath, [main, ...args], {
    env: { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: Record<string, unknown>[] = [];
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
    try {
      lines.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      // Not a log line.
    }
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, lines, exited, stderr: () => stderr };
}

/** Starts `livebus-gateway worker` on REDIS_URL with tasks on and a free /healthz port. */
export async function startWorker(redisUrl: string, env: Record<string, string> = {}): Promise<CliProcess> {
  const p = startCli(['worker'], {
    REDIS_URL: redisUrl,
    UNIFIED_REGISTRY_ENABLED: 'true',
    WORKER_HTTP_PORT: '0',
    TASK_LOCK_MS: '1500',
    TASK_STAGE_DELAY_MS: '250',
    SHUTDOWN_GRACE_MS: '3000',
    INSTANCE_ID: `worker-${Math.random().toString(36).slice(2, 8)}`,
    ...env,
  });
  const listening = await waitFor(
    () => p.lines.find((l) => l.event === 'task_worker_listening'),
    'worker listening',
    20_000,
  );
  const port = listening.port as number;
  return { ...p, port, http: `http://127.0.0.1:${port}` };
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
  const listening = await waitFor(
    () => p.lines.find((l) => l.event === 'gateway_listening'),
    'gateway listening',
    20_000,
  );
  const port = listening.port as number;
  const http = `http://127.0.0.1:${port}`;
  await waitFor(async () => (await fetch(`${http}/health/readiness`).catch(() => undefined))?.ok, 'gateway ready');
  return { ...p, port, http };
}
