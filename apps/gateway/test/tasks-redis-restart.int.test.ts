import type { TaskProgressUpdate } from '@livebus/protocol';
import { type RedisServerHandle, sleep, startRedisServer, waitFor } from '@livebus/test-support';
import { connectAs, httpJson, type TestClient } from './helpers';
import { type CliProcess, startGatewayProcess, startWorker } from './task-processes';

// Redis restarts under a running queue (docs/reliability.md): a gateway process, a
// `livebus-gateway worker` process and a user with tasks running and queued, while
// redis-server is SIGKILLed and started again on the same port, with its data (an
// append-only file: a reboot, or a failover that keeps the data) and then without it.
const OUTAGE_MS = 3_000;
const STAGES = [
  'normalising text',
  'splitting sentences and words',
  'counting words and sentences',
  'weighing key terms',
  'choosing summary sentences',
  'analysis complete',
];

const doc = (n: number) =>
  Array.from({ length: n }, (_, i) => `Sentence ${i} is about queues. Workers report progress as they go.`).join(
    '\n\n',
  );

const taskEvents = (client: TestClient, taskId: string) =>
  client
    .events()
    .filter((f) => f.event === 'task.progress_update' && (f.data as TaskProgressUpdate).task_id === taskId)
    .map((f) => f.data as TaskProgressUpdate);

const healthz = async (http: string) => (await httpJson(`${http}/healthz`)).body;

const finishedOutcomes = (worker: CliProcess, taskId: string) =>
  worker.lines.filter((l) => l.event === 'task_finished' && l.task_id === taskId).map((l) => l.outcome);

/** Starts document analyses for `uid`, each answered `queued`. */
async function startTasks(client: TestClient, uid: string, jobIds: string[], sentences = 30): Promise<void> {
  for (const id of jobIds) {
    expect(await client.call('TASK.start_document_analysis', [uid, { content: doc(sentences) }, id])).toMatchObject({
      type: 'rpc_result',
      result: { status: 'queued' },
    });
  }
}

/** Waits until `count` of the tasks passed the second stage: that many jobs are mid-way on the worker. */
const midway = (client: TestClient, taskIds: string[], count: number) =>
  waitFor(
    () => taskIds.filter((id) => taskEvents(client, id).some((u) => u.progress >= 15)).length >= count,
    `${count} tasks mid-way`,
    10_000,
  );

/** A task's updates, once it completed: queued first, one completion last, progress never going down. */
async function completedOnce(client: TestClient, taskId: string): Promise<TaskProgressUpdate[]> {
  await waitFor(() => taskEvents(client, taskId).find((u) => u.status === 'completed'), `${taskId} completed`, 20_000);
  const updates = taskEvents(client, taskId);
  expect(updates[0]?.status).toBe('queued');
  expect(updates.filter((u) => u.status === 'completed')).toHaveLength(1);
  expect(updates.at(-1)).toMatchObject({
    status: 'completed',
    progress: 100,
    result: { sentences: expect.any(Number) },
  });
  const progress = updates.map((u) => u.progress);
  expect(progress).toEqual([...progress].sort((x, y) => x - y));
  return updates;
}

// Above the preset's 30 s, which a case's own waits add up to past under load (up to 20 s for
// each of its tasks), as does the start (Redis with its data, a gateway and a worker: 20 s each):
// a slow run fails with the wait that ran out, named, not with jest's timeout.
jest.setTimeout(90_000);
const START_TIMEOUT_MS = 60_000;

// The cases share one Redis, gateway and worker on purpose: each case is one more outage of the
// same deployment (a queue that lived through a restart must live through the next), and
// starting the two processes costs more than a case. What keeps them apart: each case uses its
// own job ids and waits for its own tasks, afterEach checks that neither process crashed, and a
// case that needs another worker (the short lock) starts it itself.
describe('tasks through Redis restarts', () => {
  let redis: RedisServerHandle;
  let gateway: CliProcess;
  let worker: CliProcess;
  let client: TestClient;
  const workerEnv = { WORKER_CONCURRENCY: '2', TASK_STAGE_DELAY_MS: '300' };

  beforeAll(async () => {
    redis = await startRedisServer({ persist: true });
    [gateway, worker] = await Promise.all([
      startGatewayProcess(redis.url),
      // A lock longer than the outage, as in production (30 s): the jobs stay with their worker.
      startWorker(redis.url, { ...workerEnv, TASK_LOCK_MS: '10000' }),
    ]);
    ({ client } = await connectAs(`ws://127.0.0.1:${gateway.port}/ws`, 'rita'));
  }, START_TIMEOUT_MS);

  afterAll(async () => {
    await client?.close();
    for (const p of [worker, gateway]) void p?.stop('SIGKILL');
    await Promise.all([worker?.exited, gateway?.exited]);
    await redis?.stop();
  });

  afterEach(() => {
    if (process.env.DEBUG_T)
      console.log(
        JSON.stringify(
          worker.lines
            .filter((l) => l.event !== 'task_finished' || true)
            .map((l) => [l.event, l.task_id, l.outcome, l.attempt, l.status, String(l.error ?? '').slice(0, 120)]),
        ),
      );
    // Neither process may have crashed or printed a stack trace.
    expect(worker.child.exitCode).toBeNull();
    expect(gateway.child.exitCode).toBeNull();
    expect(worker.stderr()).toBe('');
    expect(gateway.stderr()).toBe('');
  });

  it('with its data kept: every task completes exactly once, without a retry; TASK.* answer unavailable meanwhile', async () => {
    const ids = ['r0', 'r1', 'r2', 'r3'];
    const taskIds = ids.map((id) => `doc_analysis_${id}`);
    await startTasks(client, 'rita', ids);
    // Two jobs mid-way on the worker (its concurrency), two waiting in the queue.
    await midway(client, taskIds, 2);

    await redis.kill();
    const killedAt = Date.now();
    await waitFor(async () => (await healthz(worker.http)).redis === 'down', 'the worker reporting redis down');
    await waitFor(async () => (await healthz(gateway.http)).redis === 'down', 'the gateway reporting redis down');
    for (const [method, args] of [
      ['TASK.start_document_analysis', ['rita', { content: doc(3) }, 'during']],
      ['TASK.get_status', ['doc_analysis_r0']],
      ['TASK.cancel', ['doc_analysis_r3']],
    ] as const) {
      const t0 = Date.now();
      expect(await client.call(method, [...args])).toMatchObject({ type: 'rpc_error', error: { code: 'unavailable' } });
      process.stdout.write(
        `tasks redis outage figures: ${JSON.stringify({ method, unavailableAfterMs: Date.now() - t0 })}\n`,
      );
    }
    await sleep(OUTAGE_MS - (Date.now() - killedAt));
    await redis.restart();
    await waitFor(async () => (await healthz(worker.http)).redis === 'ok', 'the worker reporting redis ok');

    // The start refused during the outage goes through when the caller retries it.
    await startTasks(client, 'rita', ['during'], 3);
    for (const taskId of [...taskIds, 'doc_analysis_during']) {
      const updates = await completedOnce(client, taskId);
      // Each change reported once: nothing replayed, no stage run twice.
      expect(updates.map((u) => u.message)).toEqual(['queued', 'started', ...STAGES]);
      // The blip used up no attempt: the job never left its worker.
      expect(await client.call('TASK.get_status', [taskId])).toMatchObject({
        result: { status: 'completed', attempts: 1 },
      });
      await waitFor(() => finishedOutcomes(worker, taskId).length >= 1, `${taskId} finished`);
      expect(finishedOutcomes(worker, taskId)).toEqual(['completed']);
    }
    expect(
      worker.lines.filter((l) => ['task_retry', 'task_stalled', 'task_worker_error'].includes(String(l.event))),
    ).toEqual([]);
    // The worker logs the outage once it starts and once it ends (plus "still down" repeats), not per reconnect.
    const status = worker.lines.filter((l) => l.event === 'redis_status').map((l) => l.status);
    expect(status[0]).toBe('up');
    expect(status).toContain('down');
    expect(status.at(-1)).toBe('up');
    expect(status.length).toBeLessThan(8);
  });

  it('away longer than the job lock: the job starts again, and the first attempt, fenced, reports nothing more', async () => {
    void worker.stop('SIGTERM');
    expect(await worker.exited).toBe(0);
    worker = await startWorker(redis.url, { ...workerEnv, TASK_LOCK_MS: '1000' });
    const taskIds = ['doc_analysis_l0', 'doc_analysis_l1'];
    await startTasks(client, 'rita', ['l0', 'l1']);
    await midway(client, taskIds, 2);
    await redis.kill();
    await sleep(OUTAGE_MS);
    await redis.restart();

    for (const taskId of taskIds) {
      const updates = await completedOnce(client, taskId);
      expect(await client.call('TASK.get_status', [taskId])).toMatchObject({
        result: { status: 'completed', attempts: 2 },
      });
      // Once the second attempt claimed the task, only its own steps were reported.
      const restart = updates.findIndex((u) => u.message === 'started again (attempt 2)');
      expect(updates.slice(restart + 1).map((u) => u.message)).toEqual(STAGES);
      // The first attempt stopped at its next checkpoint, having changed nothing.
      expect(worker.lines.filter((l) => l.event === 'task_lock_lost' && l.task_id === taskId)).toHaveLength(1);
      // The worker's line for the second attempt may still be on its way through the pipe.
      await waitFor(() => finishedOutcomes(worker, taskId).length >= 2, `both attempts of ${taskId} finished`);
      expect(finishedOutcomes(worker, taskId).sort()).toEqual(['completed', 'skipped']);
    }
    expect(worker.lines.filter((l) => l.event === 'task_worker_error')).toEqual([]);
  });

  it('coming back empty: the tasks are gone (not_found), the worker carries on, and a start again runs them', async () => {
    const ids = ['e0', 'e1', 'e2'];
    const taskIds = ids.map((id) => `doc_analysis_${id}`);
    await startTasks(client, 'rita', ids);
    await midway(client, taskIds, 1);
    await redis.restart({ empty: true });
    // The user's stream is gone with the rest: the session resumes (1012) and would hear `gap`.
    const closed = client.closed;
    expect(
      await waitFor(() => Promise.race([closed, sleep(50).then(() => undefined)]), 'the session closed', 10_000),
    ).toMatchObject({ code: 1012 });
    await client.close();
    ({ client } = await connectAs(`ws://127.0.0.1:${gateway.port}/ws`, 'rita'));

    for (const taskId of taskIds) {
      expect(await client.call('TASK.get_status', [taskId])).toMatchObject({ error: { code: 'not_found' } });
    }
    // The same job ids start afresh (the old tasks are gone) and complete.
    const seen = taskIds.map((id) => taskEvents(client, id).length);
    await startTasks(client, 'rita', ids, 3);
    for (const [i, taskId] of taskIds.entries()) {
      await waitFor(
        () =>
          taskEvents(client, taskId)
            .slice(seen[i])
            .find((u) => u.status === 'completed'),
        `${taskId} completed after the restart`,
        20_000,
      );
      expect(await client.call('TASK.get_status', [taskId])).toMatchObject({ result: { status: 'completed' } });
    }
    // An attempt of the lost tasks may end after the job id was queued again: BullMQ refuses to finish it.
    const errors = worker.lines.filter((l) => l.event === 'task_worker_error').map((l) => String(l.error));
    expect(errors.filter((e) => !/Missing (lock|key) for job|Lock mismatch for job/.test(e))).toEqual([]);
    // The worker heartbeat is written again: gateways count it once more.
    await waitFor(
      async () => ((await healthz(gateway.http)).tasks as { workers: number }).workers === 1,
      'the worker seen again',
      10_000,
    );
  });
});
