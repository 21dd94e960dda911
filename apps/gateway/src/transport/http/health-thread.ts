import type { AddressInfo } from 'node:net';
import { Worker } from 'node:worker_threads';
import type { HealthAnswer } from './health';

/** What the main thread tells the health thread, every {@link HealthThreadOptions.intervalMs}. */
export interface HealthSnapshot {
  healthz: HealthAnswer;
  readiness: HealthAnswer;
}

/** Options of {@link startHealthThread}. */
export interface HealthThreadOptions {
  port: number;
  host: string;
  /** The current answers, read on the main thread. */
  snapshot: () => HealthSnapshot;
  /** How often the main thread sends a snapshot. @default 250 */
  intervalMs?: number;
  /**
   * A snapshot older than this means the main thread's event loop is stuck: every
   * health endpoint answers 503 (`status: "stalled"`) so that ECS replaces the task.
   * @default 10_000
   */
  stallMs?: number;
  /**
   * Told when the thread ended on its own after it started (a crash, out of its memory): it is
   * started again, on the same port, `restartDelayMs` later (and again, while that fails).
   */
  onExit?: (code: number) => void;
  /** @default 1_000 */
  restartDelayMs?: number;
}

/** A running health thread. */
export interface HealthThread {
  /** Where it listens (a thread started again after a crash listens on the same port). */
  readonly address: AddressInfo;
  /** Sends a snapshot now (draining started: readiness must turn 503 at once). */
  refresh(): void;
  stop(): Promise<void>;
}

// Plain CommonJS run by the worker (eval): no module of this package, so it works the same
// from the sources (tests) and from the bundled CLI.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const http = require('node:http');
let snapshot;
let receivedAt = 0;
parentPort.on('message', (m) => { snapshot = m; receivedAt = Date.now(); });
const send = (res, status, body) => {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
};
const server = http.createServer((req, res) => {
  const path = (req.url || '/').split('?')[0];
  const stalledMs = Date.now() - receivedAt;
  const stalled = !snapshot || stalledMs > workerData.stallMs;
  if (req.method !== 'GET') return send(res, 405, { error: { code: 'method_not_allowed', message: 'GET only' } });
  if (path === '/healthz' || path === '/health/liveness' || path === '/health/readiness') {
    if (stalled) return send(res, 503, { status: 'stalled', stalled_ms: snapshot ? stalledMs : null });
    if (path === '/health/liveness') return send(res, 200, { status: 'ok' });
    const answer = path === '/healthz' ? snapshot.healthz : snapshot.readiness;
    return send(res, answer.status, answer.body);
  }
  send(res, 404, { error: { code: 'not_found', message: 'the health port serves /healthz, /health/liveness and /health/readiness' } });
});
server.keepAliveTimeout = 65000;
server.headersTimeout = 66000;
server.on('error', (error) => parentPort.postMessage({ error: String(error), code: error.code }));
server.listen({ port: workerData.port, host: workerData.host }, () => parentPort.postMessage({ address: server.address() }));
`;

/**
 * Serves the health endpoints on a port of their own, from a worker thread with its
 * own event loop. A reconnect storm (thousands of upgrades and hellos) or any long
 * task on the main thread then delays neither the ALB's nor ECS's checks: the thread
 * answers from the last snapshot the main thread sent (every 250 ms), and only a main
 * thread silent for `stallMs` makes it answer 503.
 */
export async function startHealthThread(options: HealthThreadOptions): Promise<HealthThread> {
  const intervalMs = options.intervalMs ?? 250;
  const restartDelayMs = options.restartDelayMs ?? 1_000;
  let current = await spawnHealthWorker(options);
  let stopped = false;
  let restartTimer: NodeJS.Timeout | undefined;
  const post = () => current.worker.postMessage(options.snapshot());
  // A thread that ends on its own takes the health port with it: the ALB would fail the task's
  // checks, and ECS replace it, for a thread. Told, and started again.
  const watch = (worker: Worker) =>
    worker.once('exit', (code) => {
      if (stopped || worker !== current.worker) return;
      options.onExit?.(code);
      scheduleRestart();
    });
  const scheduleRestart = () => {
    restartTimer = setTimeout(() => {
      restartTimer = undefined;
      if (stopped) return;
      spawnHealthWorker({ ...options, port: current.address.port }).then(
        (next) => {
          if (stopped) {
            void next.worker.terminate();
            return;
          }
          current = next;
          watch(next.worker);
        },
        (error: unknown) => {
          options.onExit?.(
            typeof (error as { code?: unknown }).code === 'number' ? (error as { code: number }).code : 1,
          );
          scheduleRestart();
        },
      );
    }, restartDelayMs);
    restartTimer.unref();
  };
  watch(current.worker);
  const timer = setInterval(post, intervalMs);
  timer.unref();
  return {
    get address() {
      return current.address;
    },
    refresh: post,
    async stop() {
      stopped = true;
      clearInterval(timer);
      clearTimeout(restartTimer);
      await current.worker.terminate();
    },
  };
}

/** One health thread, listening, with the first snapshot sent; its exit is the caller's to watch. */
async function spawnHealthWorker(options: HealthThreadOptions): Promise<{ worker: Worker; address: AddressInfo }> {
  const worker = new Worker(WORKER_SOURCE, {
    eval: true,
    workerData: { port: options.port, host: options.host, stallMs: options.stallMs ?? 10_000 },
    // A few MB are plenty for one small HTTP server.
    resourceLimits: { maxOldGenerationSizeMb: 16, maxYoungGenerationSizeMb: 4 },
  });
  const post = () => worker.postMessage(options.snapshot());
  post();
  const address = await new Promise<AddressInfo>((resolve, reject) => {
    const onExit = (code: number) => reject(new Error(`health thread exited with ${code}`));
    worker.once('error', reject);
    worker.once('exit', onExit);
    worker.on('message', (m: { address?: AddressInfo; error?: string; code?: string }) => {
      // The code crosses the thread boundary so the caller can tell EADDRINUSE apart.
      if (m.error) reject(Object.assign(new Error(`health port: ${m.error}`), { code: m.code }));
      if (m.address) {
        worker.off('exit', onExit);
        resolve(m.address);
      }
    });
  }).catch(async (error: unknown) => {
    await worker.terminate();
    throw error;
  });
  // The thread must not keep the process alive on its own.
  worker.unref();
  return { worker, address };
}
