import { startTcpProxy, waitFor } from '@livebus/test-support';
import { loadConfig } from '../src/config';
import { createLogger, type LogEvent, type LogFields, type Logger } from '../src/logger';
import { BullMqTaskQueue } from '../src/tasks/bullmq-task-queue';
import { MemoryTaskStore } from '../src/tasks/memory-task-store';
import type { TaskRecord } from '../src/tasks/task-store';
import { BullMqTaskWorker } from '../src/tasks/worker/bullmq-task-worker';
import { startTaskWorker } from '../src/tasks/worker/worker-cli';
import { useFleetBackends } from './fleet-backends';

const backends = useFleetBackends();
const logger = createLogger({ level: 'error', format: 'json', instanceId: 'worker-close' });

describe('BullMqTaskWorker.close(graceMs)', () => {
  it('settles once the grace is spent although a job never reaches a checkpoint', async () => {
    const backend = backends.standalone;
    await backend.flush();
    const redis = backend.connect();
    const store = new MemoryTaskStore();
    // The job's first progress publish never settles (its Redis froze): no checkpoint comes.
    const publish = () => new Promise<void>(() => {});
    const queue = new BullMqTaskQueue({ connection: backend.connect(), redis, store, pollMs: 50 });
    const worker = new BullMqTaskWorker({
      connection: backend.connect({ blocking: true }),
      redis,
      workerId: 'w-close',
      runner: { store, publish, analysis: { stageDelayMs: 1 } },
      logger,
    });
    try {
      const record: TaskRecord = {
        task_id: 'doc_analysis_stuck',
        user_id: 'u1',
        status: 'queued',
        progress: 0,
        created_at: '2026-01-01T00:00:00.000Z',
        updated_at: '2026-01-01T00:00:00.000Z',
      };
      await store.create(record);
      await queue.enqueue({ task_id: record.task_id, user_id: 'u1', kind: 'document_analysis', content: 'Stuck.' });
      await waitFor(() => worker.active === 1, 'the job to start');
      await expect(worker.close(2_000)).resolves.toBeUndefined();
    } finally {
      await queue.close();
    }
  }, 15_000);
});

describe('the worker process stop() while Redis keeps its connections and answers nothing', () => {
  it('settles: no step of the shutdown waits on that Redis past the grace', async () => {
    const proxy = await startTcpProxy(Number(new URL(backends.standalone.url).port));
    let worker: Awaited<ReturnType<typeof startTaskWorker>> | undefined;
    try {
      const config = loadConfig({
        REDIS_URL: `redis://127.0.0.1:${proxy.port}`,
        UNIFIED_REGISTRY_ENABLED: 'true',
        WORKER_HTTP_PORT: '0',
        HOST: '127.0.0.1',
        SHUTDOWN_GRACE_MS: '1000',
        INSTANCE_ID: 'worker-frozen-redis',
      });
      worker = await startTaskWorker(config, logger);
      const health = `http://127.0.0.1:${worker.address.port}/healthz`;
      await waitFor(
        async () => ((await (await fetch(health)).json()) as { redis: string }).redis === 'ok',
        'the worker to reach Redis',
      );
      // A frozen Redis (or an address that swallows packets): every command waits for ever.
      proxy.freeze();
      const stopping = worker;
      worker = undefined;
      await expect(stopping.stop('test')).resolves.toBeUndefined();
    } finally {
      proxy.thaw();
      await worker?.stop('test');
      await proxy.close();
    }
  }, 20_000);
});

describe('a job whose last attempt throws', () => {
  it('is not reported as retried: the job is given up (task_given_up), the task failed attempts_exhausted', async () => {
    const backend = backends.standalone;
    await backend.flush();
    const redis = backend.connect();
    const store = new MemoryTaskStore();
    // Every publish fails: the last attempt ends the task failed, then cannot tell the user (it throws).
    const publish = () => Promise.reject(new Error('publish refused'));
    const events: Array<{ event: LogEvent; fields?: LogFields }> = [];
    const record = (event: LogEvent, fields?: LogFields) => events.push({ event, fields });
    const captured: Logger = { error: record, warn: record, info: record, debug: () => {} };
    const outcomes: string[] = [];
    const queue = new BullMqTaskQueue({ connection: backend.connect(), redis, store, pollMs: 50, attempts: 1 });
    const worker = new BullMqTaskWorker({
      connection: backend.connect({ blocking: true }),
      redis,
      workerId: 'w-last',
      runner: { store, publish, analysis: { stageDelayMs: 1 } },
      logger: captured,
      observe: (outcome) => outcomes.push(outcome),
    });
    try {
      await store.create({
        task_id: 'doc_analysis_last',
        user_id: 'u1',
        status: 'queued',
        progress: 0,
        created_at: '2026-01-01T00:00:00.000Z',
        updated_at: '2026-01-01T00:00:00.000Z',
      });
      await queue.enqueue({ task_id: 'doc_analysis_last', user_id: 'u1', kind: 'document_analysis', content: 'One.' });
      await waitFor(() => events.some((e) => e.event === 'task_given_up'), 'the job to be given up');
      expect(events.find((e) => e.event === 'task_given_up')?.fields).toMatchObject({
        task_id: 'doc_analysis_last',
        uid: 'u1',
        attempts: 1,
        error: 'publish refused',
      });
      expect(events.map((e) => e.event)).not.toContain('task_retry');
      expect(outcomes).not.toContain('retried');
      expect(await store.get('doc_analysis_last')).toMatchObject({
        status: 'failed',
        error_code: 'attempts_exhausted',
      });
    } finally {
      await worker.close(1_000);
      await queue.close();
    }
  }, 15_000);
});
