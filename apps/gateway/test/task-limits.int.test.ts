import type { ServerFrame, TaskProgressUpdate } from '@livebus/protocol';
import { TASK_KEY_PREFIX, TASK_QUEUE_NAME } from '@livebus/publisher/redis';
import { type RedisServerHandle, startRedisServer, waitFor } from '@livebus/test-support';
import { Redis } from 'ioredis';
import { composePorts } from '../src/compose';
import { connectAs, httpJson, startGateway, type TestClient, type TestGateway } from './helpers';
import { type CliProcess, startWorker } from './task-processes';

// A document that says whose it is, so a Redis read can tell where it is kept.
const doc = (marker: string) =>
  Array.from({ length: 20 }, (_, i) => `Sentence ${i} of ${marker} is about queues and workers.`).join('\n\n');

const taskEvents = (client: TestClient, taskId: string) =>
  client
    .events()
    .filter((f) => f.event === 'task.progress_update' && (f.data as TaskProgressUpdate).task_id === taskId)
    .map((f) => f.data as TaskProgressUpdate);

const ended = (client: TestClient, taskId: string, status = 'completed') =>
  waitFor(() => taskEvents(client, taskId).find((u) => u.status === status), `${status} for ${taskId}`, 20_000);

function result(frame: ServerFrame): Record<string, unknown> {
  if (frame.type !== 'rpc_result') throw new Error(`expected a result, got ${JSON.stringify(frame)}`);
  return frame.result as Record<string, unknown>;
}

const start = (client: TestClient, uid: string, jobId: string) =>
  client.call('TASK.start_document_analysis', [uid, { content: doc(`${uid}-${jobId}`) }, jobId]);

describe('task limits: open tasks per user, the queue depth, documents not kept', () => {
  let redis: RedisServerHandle;
  let admin: Redis;
  let a: TestGateway;
  let b: TestGateway;
  let worker: CliProcess | undefined;
  const clients: Record<string, TestClient> = {};

  /** The BullMQ keys (jobs, lists, events) whose content holds `marker`. */
  async function queueKeysHolding(marker: string): Promise<string[]> {
    const keys = await admin.keys(`${TASK_KEY_PREFIX}:${TASK_QUEUE_NAME}:*`);
    const holding: string[] = [];
    for (const key of keys) {
      const type = await admin.type(key);
      let content: unknown;
      if (type === 'hash') content = await admin.hgetall(key);
      else if (type === 'string') content = await admin.get(key);
      else if (type === 'list') content = await admin.lrange(key, 0, -1);
      else if (type === 'zset') content = await admin.zrange(key, 0, -1);
      else if (type === 'set') content = await admin.smembers(key);
      else if (type === 'stream') content = await admin.xrange(key, '-', '+');
      if (JSON.stringify(content).includes(marker)) holding.push(key);
    }
    return holding;
  }

  beforeAll(async () => {
    redis = await startRedisServer();
    admin = new Redis(redis.url);
    // No worker yet: the jobs stay queued until the third test starts one.
    const config = { redisUrl: redis.url, tasksEnabled: true, taskMaxOpenPerUser: 2, taskMaxQueued: 4 };
    a = await startGateway({ ...config, instanceId: 'gw-a' }, composePorts);
    b = await startGateway({ ...config, instanceId: 'gw-b' }, composePorts);
    for (const [uid, gw] of [
      ['alice', a],
      ['bob', b],
      ['carol', a],
      ['dave', b],
    ] as const) {
      clients[uid] = (await connectAs(gw.url, uid)).client;
    }
  });

  afterAll(async () => {
    for (const c of Object.values(clients)) await c.close();
    void worker?.stop('SIGKILL');
    await Promise.allSettled([a?.close(), b?.close()]);
    admin?.disconnect();
    await redis?.stop();
  });

  it('refuses a user past TASK_MAX_OPEN_PER_USER rate_limited, on any gateway and over POST /rpc; other users still start', async () => {
    const alice = clients.alice as TestClient;
    const onB = await connectAs(b.url, 'alice');
    expect(result(await start(alice, 'alice', 'j1'))).toMatchObject({ status: 'queued' });
    expect(result(await start(onB.client, 'alice', 'j2'))).toMatchObject({ status: 'queued' });
    // The queued job holds its document (what the last test finds gone once the job ended).
    expect(await queueKeysHolding('alice-j1')).not.toEqual([]);

    expect(await start(onB.client, 'alice', 'j3')).toMatchObject({
      type: 'rpc_error',
      error: {
        code: 'rate_limited',
        message: expect.stringContaining('TASK_MAX_OPEN_PER_USER'),
        data: { open: 2, max_open: 2 },
      },
    });
    const overHttp = await httpJson(`${a.http}/rpc`, {
      method: 'POST',
      token: 'alice',
      body: JSON.stringify({ method: 'TASK.start_document_analysis', args: ['alice', { content: 'x' }, 'j3'] }),
    });
    expect(overHttp).toMatchObject({ status: 429, body: { error: { code: 'rate_limited' } } });
    // Nothing was written for the refused start; a start of a task that exists still answers it.
    expect(await alice.call('TASK.get_status', ['doc_analysis_j3'])).toMatchObject({ error: { code: 'not_found' } });
    expect(result(await start(alice, 'alice', 'j1'))).toMatchObject({ status: 'queued', existing: true });

    expect(result(await start(clients.bob as TestClient, 'bob', 'k1'))).toMatchObject({ status: 'queued' });
    await onB.client.close();
  });

  it('refuses a start of a new task unavailable once TASK_MAX_QUEUED jobs wait, not a start of one that exists; a cancel makes room', async () => {
    // Three jobs wait (alice's two, bob's one): carol's makes four, the maximum.
    expect(result(await start(clients.carol as TestClient, 'carol', 'c1'))).toMatchObject({ status: 'queued' });
    const dave = clients.dave as TestClient;
    expect(await start(dave, 'dave', 'd1')).toMatchObject({
      type: 'rpc_error',
      error: {
        code: 'unavailable',
        message: expect.stringContaining('TASK_MAX_QUEUED'),
        data: { queued: 4, max_queued: 4 },
      },
    });
    expect(await dave.call('TASK.get_status', ['doc_analysis_d1'])).toMatchObject({ error: { code: 'not_found' } });
    // A start of a task that exists is answered as ever while the queue is full (how a start that
    // failed part-way is completed): only new tasks are refused.
    expect(result(await start(clients.carol as TestClient, 'carol', 'c1'))).toMatchObject({
      status: 'queued',
      existing: true,
    });
    // Bob cancels his queued task: its job leaves the queue, and so does its slot of bob's.
    expect(result(await (clients.bob as TestClient).call('TASK.cancel', ['doc_analysis_k1']))).toMatchObject({
      status: 'cancelled',
    });
    expect(result(await start(dave, 'dave', 'd1'))).toMatchObject({ status: 'queued' });
  });

  it("frees a user's slots as their tasks end, cancelled or completed: nothing counted forever", async () => {
    const alice = clients.alice as TestClient;
    // Alice is at her two (j1, j2; the queue at its four): cancelling j1 frees her slot and the queue's.
    expect(await start(alice, 'alice', 'j3')).toMatchObject({ error: { code: 'unavailable' } });
    expect(result(await alice.call('TASK.cancel', ['doc_analysis_j1']))).toMatchObject({ status: 'cancelled' });
    expect(result(await start(alice, 'alice', 'j3'))).toMatchObject({ status: 'queued' });
    expect(await start(alice, 'alice', 'j4')).toMatchObject({ error: { code: 'unavailable' } });

    // A worker runs everything queued, then stops, so what follows stays queued.
    const running = await startWorker(redis.url);
    for (const taskId of ['doc_analysis_j2', 'doc_analysis_j3']) await ended(alice, taskId);
    await ended(clients.carol as TestClient, 'doc_analysis_c1');
    await ended(clients.dave as TestClient, 'doc_analysis_d1');
    void running.stop('SIGKILL');
    await running.exited;
    // Alice's two slots are free again, and hold exactly two.
    expect(result(await start(alice, 'alice', 'j4'))).toMatchObject({ status: 'queued' });
    expect(result(await start(alice, 'alice', 'j5'))).toMatchObject({ status: 'queued' });
    expect(await start(alice, 'alice', 'j6')).toMatchObject({ error: { code: 'rate_limited', data: { open: 2 } } });

    worker = await startWorker(redis.url);
    for (const taskId of ['doc_analysis_j4', 'doc_analysis_j5']) await ended(alice, taskId);
    expect(result(await start(alice, 'alice', 'j6'))).toMatchObject({ status: 'queued' });
    await ended(alice, 'doc_analysis_j6');
  });

  it('keeps no document in Redis once its job ended, completed or cancelled while running', async () => {
    const alice = clients.alice as TestClient;
    expect(result(await start(alice, 'alice', 'done'))).toMatchObject({ status: 'queued' });
    await ended(alice, 'doc_analysis_done');
    // The cancel must land while the task runs: on a worker whose five stages take 3 s each, not
    // the shared one's 250 ms (a cancel later than 1.25 s found the task completed, and the wait
    // for `cancelled` ran out).
    await worker?.stop('SIGTERM');
    worker = await startWorker(redis.url, { TASK_STAGE_DELAY_MS: '3000' });
    expect(result(await start(alice, 'alice', 'stopped'))).toMatchObject({ status: 'queued' });
    await waitFor(() => taskEvents(alice, 'doc_analysis_stopped').find((u) => u.status === 'running'), 'running');
    await alice.call('TASK.cancel', ['doc_analysis_stopped']);
    await ended(alice, 'doc_analysis_stopped', 'cancelled');
    // BullMQ moves a job to completed (and removes it) just after the run's last event.
    for (const marker of ['alice-done', 'alice-stopped', 'alice-j1', 'alice-j6']) {
      await waitFor(async () => (await queueKeysHolding(marker)).length === 0, `no queue key holding ${marker}`);
    }
  });
});
