import { startRedisBackends, waitFor } from '@livebus/test-support';
import { Redis } from 'ioredis';
import { loadConfig } from '../src/config';
import { createLogger } from '../src/logger';
import { buildRedisTaskQueue } from '../src/tasks/build-task-queue';
import { startTaskWorker } from '../src/tasks/worker/worker-cli';
import { LogCapture } from './helpers';

// How many connections tasks open, by client name, on every node: a gateway's task queue and a
// worker process (its BullMQ Worker, Queue, heartbeats and publisher), once a job has run.
// BullMQ shares a client it is given (Queue, and a Worker's commands) and duplicates it only
// for the Worker's blocking fetch, which must have a connection of its own.
let backends: Awaited<ReturnType<typeof startRedisBackends>>;
beforeAll(async () => {
  backends = await startRedisBackends();
}, 60_000);
afterAll(async () => {
  await Promise.all([backends?.server.stop(), backends?.cluster.stop()]);
});

async function clientsByName(ports: number[]): Promise<Record<string, number[]>> {
  const out: Record<string, number[]> = {};
  for (const [i, port] of ports.entries()) {
    const admin = new Redis({ port, host: '127.0.0.1', connectionName: 'count-admin' });
    try {
      const list = (await admin.client('LIST')) as string;
      for (const line of list.trim().split('\n')) {
        const name = /(?:^| )name=(\S*)/.exec(line)?.[1] ?? '';
        if (name === 'count-admin' || !/livebus-conn-|^\{lbq\}/.test(name)) continue;
        const perNode = out[name] ?? ports.map(() => 0);
        perNode[i] = (perNode[i] ?? 0) + 1;
        out[name] = perNode;
      }
    } finally {
      admin.disconnect();
    }
  }
  return out;
}

describe.each(['standalone', 'cluster'] as const)('task connections on %s Redis', (kind) => {
  it('one connection per client and node: the gateway one client, the worker three, one of them the blocking duplicate BullMQ needs', async () => {
    const url = kind === 'cluster' ? backends.cluster.url : backends.server.url;
    const ports = kind === 'cluster' ? backends.cluster.nodes.map((n) => n.port) : [Number(new URL(url).port)];
    const env = {
      REDIS_URL: url,
      REDIS_CLUSTER: String(kind === 'cluster'),
      UNIFIED_REGISTRY_ENABLED: 'true',
      WORKER_HTTP_PORT: '0',
      HOST: '127.0.0.1',
    };
    const logs = new LogCapture();
    const logger = createLogger({ level: 'debug', format: 'json', instanceId: 'conn', transport: logs });
    const built = buildRedisTaskQueue(loadConfig({ ...env, INSTANCE_ID: 'livebus-conn-gw' }));
    const worker = await startTaskWorker(loadConfig({ ...env, INSTANCE_ID: 'livebus-conn-wk' }), logger);
    try {
      if (!built) throw new Error('no queue');
      const at = new Date().toISOString();
      const taskId = `doc_analysis_conn-${kind}`;
      const queueJobId = built.queue.queueJobId(taskId, at);
      await built.queue.store.create({
        task_id: taskId,
        user_id: 'u1',
        status: 'queued',
        progress: 0,
        created_at: at,
        updated_at: at,
        queue_job_id: queueJobId,
      });
      await built.queue.enqueue({
        task_id: taskId,
        user_id: 'u1',
        kind: 'document_analysis',
        content: 'One. Two.',
        queue_job_id: queueJobId,
      });
      await waitFor(async () => (await built.queue.store.get(taskId))?.status === 'completed', 'the job to run');
      const counts = await clientsByName(ports);
      // Four clients: the gateway's, the worker's two (fail-fast and waiting through outages, by
      // design) and BullMQ's blocking duplicate of the second. None is open twice on a node: a
      // Cluster client has one connection per node it talks to (measured: the three masters for
      // each of ours, two for the blocking one; standalone: one each).
      expect(Object.keys(counts).sort()).toEqual([
        'livebus-livebus-conn-gw-tasks',
        'livebus-livebus-conn-wk-worker',
        'livebus-livebus-conn-wk-worker-jobs',
        expect.stringMatching(/^\{lbq\}:[^:]+:w:livebus-conn-wk$/),
      ]);
      for (const perNode of Object.values(counts)) expect(Math.max(...perNode)).toBe(1);
    } finally {
      await worker.stop('test');
      await built?.queue.close();
      await built?.close();
    }
  }, 60_000);
});
