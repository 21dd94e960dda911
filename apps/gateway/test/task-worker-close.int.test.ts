import { waitFor } from '@livebus/test-support';
import { createLogger } from '../src/logger';
import { BullMqTaskQueue } from '../src/tasks/bullmq-task-queue';
import { MemoryTaskStore } from '../src/tasks/memory-task-store';
import type { TaskRecord } from '../src/tasks/task-store';
import { BullMqTaskWorker } from '../src/tasks/worker/bullmq-task-worker';
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
