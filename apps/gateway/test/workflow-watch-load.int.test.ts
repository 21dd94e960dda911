import { type ChildProcess, spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';
import {
  type FirestoreEmulatorHandle,
  type RedisServerHandle,
  startFirestoreEmulator,
  startRedisServer,
  waitFor,
} from '@livebus/test-support';
import type { Firestore } from 'firebase-admin/firestore';
import { composePorts } from '../src/compose';
import { connectAs, startGateway, type TestClient, type TestGateway } from './helpers';
import { changesOf, testFirestore, testListeners, useEmulator, warmUp, write } from './listeners-helpers';

// Issue 22 item 5: with every core busy (the emulator plus a CPU burner), a job change written
// right after WORKFLOW.watch resolved never arrived as an event of its own: the reply came before
// the job's initial state was read, so a write made right after it landed in the initial `added`
// (or, for a watch received by the instance without the user's lease, the holder attached the
// watch seconds later, at its next renewal). Now the reply follows the initial state, here or on
// the holder. The burners run only while this file does (bounded to 120 s should it die first).
let emulator: FirestoreEmulatorHandle;
let redis: RedisServerHandle;
let db: Firestore;
let closeDb: () => Promise<void>;
let holder: TestGateway;
let other: TestGateway;
const burners: ChildProcess[] = [];

function startBurners(): void {
  for (let i = 0; i < Math.max(2, availableParallelism()); i++) {
    const child = spawn(process.execPath, ['-e', 'const end = Date.now() + 120000; while (Date.now() < end) {}'], {
      stdio: 'ignore',
    });
    burners.push(child);
  }
}

const gateway = (instanceId: string) =>
  startGateway(
    {
      instanceId,
      redisUrl: redis.url,
      listeners: testListeners,
      firestoreProjectId: emulator.projectId,
      detachDelayMs: 100,
    },
    composePorts,
  );

beforeAll(async () => {
  [emulator, redis] = await Promise.all([startFirestoreEmulator('livebus-watch-load'), startRedisServer()]);
  useEmulator(emulator);
  ({ db, close: closeDb } = testFirestore(emulator.projectId, 'watch-load-writer'));
  await warmUp(db);
  [holder, other] = await Promise.all([gateway('gw-watch-holder'), gateway('gw-watch-other')]);
  startBurners();
}, 60_000);

afterAll(async () => {
  for (const b of burners) b.kill('SIGKILL');
  await Promise.all([holder?.close(), other?.close()]);
  await closeDb?.();
  await Promise.all([emulator?.stop(), redis?.stop()]);
});

const workflowEvents = (client: TestClient, path: string) =>
  changesOf(client, path).filter((e) => (e.data as { source: string }).source === 'workflow');
const summary = (client: TestClient, path: string) =>
  workflowEvents(client, path).map((e) => {
    const data = e.data as { change: string; initial: boolean; data: { status: string } };
    return [data.change, data.initial, data.data.status];
  });

describe('WORKFLOW.watch with every core busy', () => {
  it.each([
    ['the holder of the lease', 1],
    ['the holder of the lease', 2],
    ['the instance without the lease', 3],
    ['the instance without the lease', 4],
  ])(
    'run %#: a watch received by %s; a change written right after the reply arrives as its own event',
    async (where, run) => {
      const uid = `load-${run}`;
      const path = `jobs/wf-load-${run}`;
      await write(db, path, 'set', { owner_id: uid, status: 'queued' });
      const tab = (await connectAs(holder.url, uid)).client;
      await holder.hooks.waitFor('listener.attached', uid, () => true, 20_000);
      const watcher = where === 'the holder of the lease' ? tab : (await connectAs(other.url, uid)).client;
      expect(await watcher.call('WORKFLOW.watch', [`wf-load-${run}`])).toMatchObject({ result: { watching: true } });
      await write(db, path, 'update', { status: 'running' });
      await write(db, path, 'update', { status: 'done' });
      await waitFor(() => workflowEvents(watcher, path).length >= 3, 'the initial state and both changes', 30_000);
      // Both tabs read the user's stream: the same events, once each, the initial one from before the write.
      for (const client of new Set([tab, watcher])) {
        await waitFor(() => workflowEvents(client, path).length >= 3, 'every tab has them', 30_000);
        expect(summary(client, path)).toEqual([
          ['added', true, 'queued'],
          ['modified', false, 'running'],
          ['modified', false, 'done'],
        ]);
      }
      expect(holder.gw.stats().workflowListeners + other.gw.stats().workflowListeners).toBe(1);
      await Promise.all([...new Set([tab, watcher])].map((c) => c.close()));
      await waitFor(
        () => holder.gw.stats().listeners + other.gw.stats().listeners === 0,
        'released everywhere',
        20_000,
      );
    },
    90_000,
  );
});
