import type { ServerFrame, TaskProgressUpdate } from '@livebus/protocol';
import { TASK_KEY_PREFIX, TASK_QUEUE_NAME, taskKey } from '@livebus/publisher/redis';
import { type RedisServerHandle, startRedisServer, waitFor } from '@livebus/test-support';
import { Redis } from 'ioredis';
import { composePorts } from '../src/compose';
import { connectAs, httpJson, startGateway, type TestClient, type TestGateway } from './helpers';
import { type CliProcess, startWorker } from './task-processes';

// The stage delay of startWorker's workers.
const STAGE_DELAY_MS = 250;
const doc = (n = 40) =>
  Array.from(
    { length: n },
    (_, i) =>
      `Sentence ${i} talks about Redis queues and workers. Workers publish progress to every session of the user.`,
  ).join(i18nBreak);
const i18nBreak = '\n\n';

const taskEvents = (client: TestClient, taskId: string) =>
  client
    .events()
    .filter((f) => f.event === 'task.progress_update' && (f.data as TaskProgressUpdate).task_id === taskId)
    .map((f) => f.data as TaskProgressUpdate);

const ended = (client: TestClient, taskId: string, status: string, timeoutMs = 15_000) =>
  waitFor(() => taskEvents(client, taskId).find((u) => u.status === status), `${status} for ${taskId}`, timeoutMs);

function expectOrdered(updates: TaskProgressUpdate[], last: string): void {
  expect(updates[0]?.status).toBe('queued');
  expect(updates.at(-1)?.status).toBe(last);
  expect(updates.slice(1, -1).every((u) => u.status === 'running')).toBe(true);
  const progress = updates.map((u) => u.progress);
  expect(progress).toEqual([...progress].sort((a, b) => a - b));
}

/** The result of an answer that must be a success. */
function result(frame: ServerFrame): Record<string, unknown> {
  if (frame.type !== 'rpc_result') throw new Error(`expected a result, got ${JSON.stringify(frame)}`);
  return frame.result as Record<string, unknown>;
}

describe('tasks on Redis: BullMQ workers as their own processes', () => {
  let redis: RedisServerHandle;
  let a: TestGateway;
  let b: TestGateway;
  let worker: CliProcess;
  let admin: Redis;

  beforeAll(async () => {
    redis = await startRedisServer();
    admin = new Redis(redis.url);
    const withRedis = { redisUrl: redis.url, unifiedRegistryEnabled: true };
    a = await startGateway({ ...withRedis, instanceId: 'gw-a' }, composePorts);
    b = await startGateway({ ...withRedis, instanceId: 'gw-b' }, composePorts);
    worker = await startWorker(redis.url);
  });

  afterAll(async () => {
    void worker?.stop('SIGKILL');
    await Promise.allSettled([a?.close(), b?.close()]);
    admin?.disconnect();
    await redis?.stop();
  });

  it('reports progress to every session of the user on any instance, in order, ending with the result', async () => {
    const onA = await connectAs(a.url, 'alice');
    const onB = await connectAs(b.url, 'alice');
    const late = await connectAs(b.url, 'alice');
    const started = result(await onA.client.call('TASK.start_document_analysis', ['alice', { content: doc() }, 'j1']));
    expect(started).toMatchObject({ success: true, task_id: 'doc_analysis_j1', status: 'queued', job_id: 'j1' });
    expect(started.celery_task_id).toBe(started.queue_job_id);
    expect(started.queue_job_id).toMatch(/^t-[0-9a-f]{32}$/);

    // A session that drops mid-task and resumes from its cursor gets the rest of the stream.
    const midway = await waitFor(
      () => late.client.events().find((f) => f.event === 'task.progress_update' && f.data.status === 'running'),
      'a running update',
    );
    await late.client.close();

    const done = await ended(onA.client, 'doc_analysis_j1', 'completed');
    await ended(onB.client, 'doc_analysis_j1', 'completed');
    expect(done.progress).toBe(100);
    expect(done.result).toMatchObject({ words: expect.any(Number), sentences: 80, top_terms: expect.any(Array) });
    expect((done.result as { summary: string[] }).summary.length).toBeGreaterThan(0);
    const seenA = taskEvents(onA.client, 'doc_analysis_j1');
    expectOrdered(seenA, 'completed');
    expect(seenA.map((u) => u.message)).toEqual(expect.arrayContaining(['queued', 'started', 'analysis complete']));
    expect(taskEvents(onB.client, 'doc_analysis_j1')).toEqual(seenA);

    const again = await connectAs(a.url, 'alice', { last_cursor: midway.cursor });
    await ended(again.client, 'doc_analysis_j1', 'completed');
    const resumed = taskEvents(again.client, 'doc_analysis_j1');
    expect(resumed).toEqual(seenA.slice(seenA.length - resumed.length));

    const status = result(await onB.client.call('TASK.get_status', ['doc_analysis_j1']));
    expect(status).toMatchObject({ status: 'completed', progress: 100, user_id: 'alice', attempts: 1 });

    // Gateways count worker heartbeats every 2 s.
    const health = await waitFor(async () => {
      const h = await httpJson(`${a.http}/healthz`);
      return (h.body.tasks as { workers: number }).workers === 1 ? h : undefined;
    }, 'the worker seen on /healthz');
    expect(health.body.tasks).toEqual({ enabled: true, queue: 'bullmq', workers: 1 });
    const metrics = await httpJson(`http://127.0.0.1:${worker.port}/metrics`);
    expect(String(metrics.body)).toMatch(/livebus_task_jobs_total\{outcome="completed"\} [1-9]/);
    expect(String(metrics.body)).toContain('livebus_task_duration_seconds_bucket');
    expect(String((await httpJson(`${a.http}/metrics`)).body)).toContain('livebus_task_queue_depth{state="waiting"}');
    for (const c of [onA, onB, again]) await c.client.close();
  });

  it('runs a job id started twice only once; the second start answers the existing task', async () => {
    const { client } = await connectAs(a.url, 'dora');
    const first = result(await client.call('TASK.start_document_analysis', ['dora', { content: doc(5) }, 'twice']));
    const second = result(await client.call('TASK.start_document_analysis', ['dora', { content: doc(5) }, 'twice']));
    expect(second).toMatchObject({ task_id: first.task_id, queue_job_id: first.queue_job_id, existing: true });
    expect(second.created_at).toBe(first.created_at);
    await ended(client, 'doc_analysis_twice', 'completed');
    const third = result(await client.call('TASK.start_document_analysis', ['dora', { content: 'x' }, 'twice']));
    expect(third).toMatchObject({ status: 'completed', existing: true });
    expect(taskEvents(client, 'doc_analysis_twice').filter((u) => u.status === 'queued')).toHaveLength(1);
    // The worker logs task_finished after the run's last update: it may still be in the pipe.
    const finished = (l: Record<string, unknown>) => l.event === 'task_finished' && l.task_id === 'doc_analysis_twice';
    await worker.waitForLine(finished, 'task_finished for doc_analysis_twice');
    expect(worker.lines.filter(finished)).toHaveLength(1);
    await client.close();
  });

  it('keeps tasks to their owner; a service caller may act for anyone', async () => {
    const alice = await connectAs(a.url, 'alice');
    const bob = await connectAs(a.url, 'bob');
    await alice.client.call('TASK.start_document_analysis', ['alice', { content: doc(3) }, 'private']);
    for (const [method, args] of [
      ['TASK.get_status', ['doc_analysis_private']],
      ['TASK.cancel', ['doc_analysis_private']],
      ['TASK.start_document_analysis', ['alice', { content: 'x' }, 'other']],
      ['TASK.start_document_analysis', ['bob', { content: 'x' }, 'private']],
    ] as const) {
      expect(await bob.client.call(method, [...args])).toMatchObject({
        type: 'rpc_error',
        error: { code: 'forbidden' },
      });
    }
    const asService = await httpJson(`${a.http}/rpc`, {
      method: 'POST',
      token: 'service:backend',
      body: JSON.stringify({ method: 'TASK.get_status', args: ['doc_analysis_private'] }),
    });
    expect(asService.status).toBe(200);
    expect(JSON.stringify(asService.body)).toContain('"user_id":"alice"');
    await ended(alice.client, 'doc_analysis_private', 'completed');
    expect(await bob.client.call('TASK.get_status', ['doc_analysis_nope'])).toMatchObject({
      error: { code: 'not_found' },
    });
    await alice.client.close();
    await bob.client.close();
  });

  it('cancel stops a running job and reports cancelled', async () => {
    const { client } = await connectAs(b.url, 'carol');
    await client.call('TASK.start_document_analysis', ['carol', { content: doc() }, 'stop-me']);
    await waitFor(() => taskEvents(client, 'doc_analysis_stop-me').find((u) => u.status === 'running'), 'running');
    const cancel = result(await client.call('TASK.cancel', ['doc_analysis_stop-me']));
    expect(cancel).toEqual({ success: true, task_id: 'doc_analysis_stop-me', status: 'cancelled' });
    await ended(client, 'doc_analysis_stop-me', 'cancelled');
    // Stages are STAGE_DELAY_MS apart: had it kept running, another update would come by now.
    await new Promise((r) => setTimeout(r, STAGE_DELAY_MS * 3));
    expectOrdered(taskEvents(client, 'doc_analysis_stop-me'), 'cancelled');
    // Cancelled as asked: a cancel again (a retry) answers success too.
    expect(result(await client.call('TASK.cancel', ['doc_analysis_stop-me']))).toMatchObject({
      success: true,
      status: 'cancelled',
    });
    await client.close();
  });

  it('a job whose worker is SIGKILLed mid-way is picked up by a restarted worker and completes', async () => {
    // Only workers with a short lock take this job: the killed one's lock lapses, and the next
    // one looks for lapsed locks, within seconds (stalledInterval is the lock) rather than the
    // shared worker's 10 s. 3 s rather than less: renewed every 1.5 s, a lock survives a worker
    // starved for a second, so the job starts again because of the kill only (attempts: 2).
    const shortLock = { TASK_LOCK_MS: '3000' };
    void worker.stop('SIGTERM');
    await worker.exited;
    const killed = await startWorker(redis.url, shortLock);
    let restarted: CliProcess | undefined;
    try {
      const { client } = await connectAs(a.url, 'erin');
      await client.call('TASK.start_document_analysis', ['erin', { content: doc() }, 'survivor']);
      await waitFor(
        () => taskEvents(client, 'doc_analysis_survivor').find((u) => u.status === 'running' && u.progress >= 15),
        'running mid-way',
      );
      void killed.stop('SIGKILL');
      await killed.exited;
      // BullMQ checks a queue for lapsed locks once per interval across its workers (the
      // stalled-check key): the last check of a stopped worker (the shared one's: 10 s) would
      // hold off the restarted worker's first. It checks at once, and again a lock later.
      await admin.del(`${TASK_KEY_PREFIX}:${TASK_QUEUE_NAME}:stalled-check`);
      restarted = await startWorker(redis.url, shortLock);
      const done = await ended(client, 'doc_analysis_survivor', 'completed', 20_000);
      expect(done.result).toMatchObject({ sentences: 80 });
      expectOrdered(taskEvents(client, 'doc_analysis_survivor'), 'completed');
      const status = result(await client.call('TASK.get_status', ['doc_analysis_survivor']));
      expect(status).toMatchObject({ status: 'completed', attempts: 2 });
      // The worker that started it again says whose task it was, not only BullMQ's job id.
      const stalled = await restarted.waitForLine((l) => l.event === 'task_stalled', 'task_stalled', 5_000);
      expect(stalled).toMatchObject({ task_id: 'doc_analysis_survivor', uid: 'erin', job_id: status.queue_job_id });
      await client.close();
    } finally {
      // The shared worker (10 s lock) back for the cases that follow.
      void killed.stop('SIGKILL');
      if (restarted) void restarted.stop('SIGTERM');
      await Promise.all([killed.exited, restarted?.exited]);
      worker = await startWorker(redis.url);
    }
  }, 60_000);

  it('a job id started again after its task expired runs again (the finished job of the first run is no obstacle)', async () => {
    const { client } = await connectAs(a.url, 'gus');
    await client.call('TASK.start_document_analysis', ['gus', { content: doc(4) }, 'again']);
    await ended(client, 'doc_analysis_again', 'completed');
    // As TASK_TTL_S does: the record goes (BullMQ's finished job went when it ended; an older
    // gateway's stayed an hour, which the run's own job id is for).
    await admin.del(taskKey('doc_analysis_again'));
    expect(await client.call('TASK.get_status', ['doc_analysis_again'])).toMatchObject({
      type: 'rpc_error',
      error: { code: 'not_found' },
    });
    const before = taskEvents(client, 'doc_analysis_again').length;
    const again = result(await client.call('TASK.start_document_analysis', ['gus', { content: doc(6) }, 'again']));
    expect(again).toMatchObject({ status: 'queued' });
    expect(again.existing).toBeUndefined();
    await waitFor(
      () =>
        taskEvents(client, 'doc_analysis_again')
          .slice(before)
          .find((u) => u.status === 'completed'),
      'the second run completed',
      15_000,
    );
    const second = taskEvents(client, 'doc_analysis_again').slice(before);
    expectOrdered(second, 'completed');
    expect(second.at(-1)?.result).toMatchObject({ sentences: 12 });
    await client.close();
  });

  it('on SIGTERM a worker hands its running job back within the grace period; another worker finishes it', async () => {
    // Only a slow worker (1 s stages, 1.6 s grace, which it cannot finish in) may take the job.
    // The shared worker stops as in a deploy: a job it may still be ending (the update comes
    // before BullMQ's move to completed) is not left behind its 10 s lock.
    void worker.stop('SIGTERM');
    await worker.exited;
    const slow = await startWorker(redis.url, { TASK_STAGE_DELAY_MS: '1000', SHUTDOWN_GRACE_MS: '1600' });
    const { client } = await connectAs(a.url, 'fay');
    await client.call('TASK.start_document_analysis', ['fay', { content: doc() }, 'handed']);
    await waitFor(() => taskEvents(client, 'doc_analysis_handed').find((u) => u.status === 'running'), 'running');
    const stoppedAt = Date.now();
    void slow.stop('SIGTERM');
    expect(await slow.exited).toBe(0);
    process.stdout.write(
      `task hand-back figures: ${JSON.stringify({ graceMs: 1_600, exitedAfterMs: Date.now() - stoppedAt })}\n`,
    );
    expect(slow.lines.some((l) => l.event === 'task_handed_back' && l.task_id === 'doc_analysis_handed')).toBe(true);
    worker = await startWorker(redis.url);
    await ended(client, 'doc_analysis_handed', 'completed', 20_000);
    expectOrdered(taskEvents(client, 'doc_analysis_handed'), 'completed');
    await client.close();
  });

  it('a worker with UNIFIED_REGISTRY_ENABLED=false stays idle', async () => {
    const idle = await startWorker(redis.url, {
      UNIFIED_REGISTRY_ENABLED: 'false',
      ADMIN_TOKEN: 'worker-admin-0123456789',
    });
    expect(idle.lines.some((l) => l.event === 'task_worker_idle')).toBe(true);
    expect((await httpJson(`http://127.0.0.1:${idle.port}/healthz`)).body).toMatchObject({ enabled: false });
    // A probe's query string is the same route.
    expect((await httpJson(`http://127.0.0.1:${idle.port}/healthz?source=alb`)).status).toBe(200);
    // /metrics takes the admin token as the gateway's admin endpoints do.
    const metrics = (token?: string) => httpJson(`http://127.0.0.1:${idle.port}/metrics`, token ? { token } : {});
    expect((await metrics()).status).toBe(401);
    expect((await metrics('worker-admin-wrong-token')).status).toBe(401);
    expect((await metrics('worker-admin-0123456789')).status).toBe(200);
    // The header's spacing forgiven, as bearer() reads it for the gateway.
    expect((await metrics(' worker-admin-0123456789 ')).status).toBe(200);
    void idle.stop('SIGTERM');
    expect(await idle.exited).toBe(0);
  });
});

describe('tasks without Redis, and with the flag off', () => {
  it('the embedded default runs a task end to end in-process', async () => {
    const t = await startGateway({ unifiedRegistryEnabled: true, taskMaxDocumentBytes: 10_000 });
    try {
      const { client } = await connectAs(t.url, 'gus');
      const started = result(await client.call('TASK.start_document_analysis', ['gus', { content: doc(5) }, 'e2e']));
      expect(started).toMatchObject({
        status: 'queued',
        queue_job_id: expect.stringMatching(/^mem-doc_analysis_e2e@/),
      });
      const done = await ended(client, 'doc_analysis_e2e', 'completed');
      expect(done.result).toMatchObject({ sentences: 10 });
      expectOrdered(taskEvents(client, 'doc_analysis_e2e'), 'completed');
      expect((await httpJson(`${t.http}/healthz`)).body.tasks).toEqual({ enabled: true, queue: 'memory', workers: 1 });
      const tooBig = await client.call('TASK.start_document_analysis', ['gus', { content: 'x'.repeat(10_001) }, 'big']);
      expect(tooBig).toMatchObject({
        type: 'rpc_error',
        error: {
          code: 'invalid_params',
          message: expect.stringContaining('TASK_MAX_DOCUMENT_BYTES'),
          data: { issues: [{ path: '1.content', message: expect.stringContaining('10001 bytes') }], bytes: 10_001 },
        },
      });
      await client.close();
    } finally {
      await t.close();
    }
  });

  it('warns at start when TASK_MAX_DOCUMENT_BYTES does not fit in a frame (MAX_PAYLOAD_BYTES)', async () => {
    const big = await startGateway({ tasksEnabled: true, taskMaxDocumentBytes: 2_097_152, maxPayloadBytes: 1_048_576 });
    const fits = await startGateway({ tasksEnabled: true, taskMaxDocumentBytes: 524_288, maxPayloadBytes: 1_048_576 });
    try {
      const warned = (t: TestGateway) => t.logs.of('gateway_config_warning').map((l) => l.variable);
      expect(warned(big)).toContain('TASK_MAX_DOCUMENT_BYTES');
      expect(warned(fits)).not.toContain('TASK_MAX_DOCUMENT_BYTES');
    } finally {
      await Promise.all([big.close(), fits.close()]);
    }
  });

  it('TASKS_ENABLED switches tasks apart from the unified registry, both ways', async () => {
    const tasksOnly = await startGateway({ tasksEnabled: true, taskMaxDocumentBytes: 10_000 });
    const registryOnly = await startGateway({ unifiedRegistryEnabled: true, tasksEnabled: false });
    try {
      const a = await connectAs(tasksOnly.url, 'ida');
      const started = result(
        await a.client.call('TASK.start_document_analysis', ['ida', { content: doc(2) }, 'apart']),
      );
      expect(started).toMatchObject({ status: 'queued' });
      await ended(a.client, 'doc_analysis_apart', 'completed');
      expect(await a.client.call('UNIFIED_REGISTRY.get_user_registry', ['ida'])).toMatchObject({
        error: { code: 'unavailable' },
      });
      const b = await connectAs(registryOnly.url, 'ida');
      expect(await b.client.call('TASK.get_status', ['doc_analysis_apart'])).toMatchObject({
        error: { code: 'unavailable', message: expect.stringContaining('TASKS_ENABLED=false') },
      });
      expect((await b.client.call('UNIFIED_REGISTRY.get_user_registry', ['ida'])).type).toBe('rpc_result');
      expect((await httpJson(`${registryOnly.http}/healthz`)).body.tasks).toEqual({ enabled: false });
      await Promise.all([a.client.close(), b.client.close()]);
    } finally {
      await Promise.all([tasksOnly.close(), registryOnly.close()]);
    }
  });

  it('UNIFIED_REGISTRY_ENABLED=false (the default) answers unavailable, saying why', async () => {
    const t = await startGateway();
    try {
      const { client } = await connectAs(t.url, 'hal');
      for (const [method, args] of [
        ['TASK.start_document_analysis', ['hal', { content: 'x' }, 'j']],
        ['TASK.get_status', ['doc_analysis_j']],
        ['TASK.cancel', ['doc_analysis_j']],
      ] as const) {
        expect(await client.call(method, [...args])).toMatchObject({
          error: { code: 'unavailable', message: expect.stringContaining('UNIFIED_REGISTRY_ENABLED=false') },
        });
      }
      expect((await httpJson(`${t.http}/healthz`)).body.tasks).toEqual({ enabled: false });
      await client.close();
    } finally {
      await t.close();
    }
  });
});
