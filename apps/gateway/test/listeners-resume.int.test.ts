import type { AppEvent, ListenerChange } from '@livebus/protocol';
import {
  type FirestoreEmulatorHandle,
  type RedisServerHandle,
  sleep,
  startFirestoreEmulator,
  startRedisServer,
  waitFor,
} from '@livebus/test-support';
import type { Firestore } from 'firebase-admin/firestore';
import { Redis } from 'ioredis';
import { RedisEventBus } from '../src/fleet/bus/redis-event-bus';
import { RedisLease } from '../src/fleet/lease/redis-lease';
import { type GatewayHookEvents, Hooks } from '../src/hooks';
import { FirestoreListenerSource } from '../src/listeners/firestore/firestore-listener-source';
import type { AttachContext } from '../src/listeners/listener-source';
import { RedisWatermarkStore } from '../src/listeners/redis-watermark-store';
import type { WatermarkStore } from '../src/listeners/watermark-store';
import type { Logger } from '../src/logger';
import { testFirestore, useEmulator, warmUp } from './listeners-helpers';

// A holder killed between publishing a snapshot's events and storing its mark, made
// deterministic: its store drops the writes from a point on (the kill), so its last
// events are in the user's stream (real Redis bus) and not in the stored state.
let emulator: FirestoreEmulatorHandle;
let redis: RedisServerHandle;
let client: Redis;
let db: Firestore;
let closeDb: () => Promise<void>;

const silent: Logger = { error() {}, warn() {}, info() {}, debug() {} };
const LISTENERS = [{ name: 'notifications', collection: 'users/{uid}/notifications' }];

beforeAll(async () => {
  [emulator, redis] = await Promise.all([startFirestoreEmulator('livebus-listeners-resume'), startRedisServer()]);
  useEmulator(emulator);
  ({ db, close: closeDb } = testFirestore(emulator.projectId, 'test-resume'));
  await warmUp(db);
  client = new Redis(redis.url);
}, 60_000);

afterAll(async () => {
  client?.disconnect();
  await closeDb?.();
  await Promise.all([emulator?.stop(), redis?.stop()]);
});

/** A store whose writes are dropped once `killed` (answering true, as a write lost with the process). */
function killable(store: WatermarkStore): WatermarkStore & { killed: boolean } {
  return {
    killed: false,
    get: (uid) => store.get(uid),
    async set(...args) {
      return this.killed ? true : store.set(...args);
    },
    forget: (uid, listener) => store.forget(uid, listener),
    clear: (uid) => store.clear(uid),
  };
}

describe('a holder whose lease went to another instance', () => {
  it('is fenced at its next mark: the source tells the hooks (lease.lost, fenced) and the manager, once', async () => {
    const uid = `fenced-${Date.now()}`;
    const lease = new RedisLease(client);
    const store = new RedisWatermarkStore(client);
    const hooks = new Hooks<GatewayHookEvents>();
    const lost: GatewayHookEvents['lease.lost'][] = [];
    hooks.on('lease.lost', (e) => lost.push(e));
    let told = 0;
    const old = (await lease.acquire(uid, 'gw-old', 500))!.token;
    const sent: AppEvent[] = [];
    const source = new FirestoreListenerSource({ firestore: db, listeners: LISTENERS, marks: store, logger: silent });
    await db.doc(`users/${uid}/notifications/first`).set({ n: 1 });
    const detach = await source.attach(uid, (event) => void sent.push(event), {
      fence: { owner: 'gw-old', token: old },
      onFenced: () => told++,
      hooks,
    });
    await waitFor(() => sent.length === 1, 'the initial snapshot', 10_000);
    // The old holder stops renewing; another instance takes the lease over.
    await waitFor(async () => (await lease.acquire(uid, 'gw-new', 60_000)) !== undefined, 'the takeover', 5_000, 100);
    await db.doc(`users/${uid}/notifications/second`).set({ n: 2 });
    await db.doc(`users/${uid}/notifications/third`).set({ n: 3 });
    await waitFor(() => lost.length === 1, 'lease.lost', 10_000);
    await sleep(300);
    expect(lost).toEqual([{ uid, reason: 'fenced' }]);
    expect(told).toBe(1);
    await detach({ handover: true });
  }, 60_000);
});

describe('takeover after a holder died between publishing and storing its mark', () => {
  it('re-sends neither the change nor the deletion the dead holder published; a later write is delivered', async () => {
    const uid = `kim-${Date.now()}`;
    const path = (id: string) => `users/${uid}/notifications/${id}`;
    const bus = new RedisEventBus(client);
    const lease = new RedisLease(client);
    const store = new RedisWatermarkStore(client);
    const changes = (events: AppEvent[]) =>
      events.map((e) => {
        const d = e.data as ListenerChange;
        return `${d.change} ${d.path.split('/').pop()}`;
      });
    const attach = async (owner: string, marks: WatermarkStore, sent: AppEvent[]) => {
      const token = (await lease.acquire(uid, owner, 60_000))!.token;
      const context: AttachContext = {
        fence: { owner, token },
        readSince: (cursor) => bus.readSince(uid, cursor),
      };
      const source = new FirestoreListenerSource({ firestore: db, listeners: LISTENERS, marks, logger: silent });
      const detach = await source.attach(
        uid,
        (event) => {
          sent.push(event);
          return bus.publish(uid, event);
        },
        context,
      );
      return { token, detach };
    };

    await db.doc(path('kept')).set({ n: 0 });
    await db.doc(path('doomed')).set({ n: -1 });
    const dead = killable(store);
    const deadSent: AppEvent[] = [];
    const a = await attach('gw-dead', dead, deadSent);
    await waitFor(() => deadSent.length === 2, 'the initial snapshot');
    await waitFor(async () => (await store.get(uid)).cursors['notifications'] !== undefined, 'its mark and cursor');

    // From here on the holder publishes but never stores: killed before its marks land.
    dead.killed = true;
    await db.doc(path('published')).set({ n: 1 });
    await db.doc(path('doomed')).delete();
    await waitFor(() => deadSent.length === 4, 'the last events of the dead holder');
    expect(changes(deadSent.slice(2))).toEqual(['added published', 'removed doomed']);
    await a.detach({ handover: true });
    await lease.release(uid, 'gw-dead', a.token);
    // A write from another source in between: not this listener's, skipped by the replay.
    await bus.publish(uid, {
      event: 'listener.change',
      data: {
        source: 'firestore',
        listener: 'other',
        path: 'x/y',
        change: 'added',
        update_time: '2030-01-01T00:00:00.000000Z',
      },
    });

    const sent: AppEvent[] = [];
    const b = await attach('gw-new', store, sent);
    await db.doc(path('after')).set({ n: 2 });
    await waitFor(() => sent.length >= 1, 'the write after the takeover', 10_000);
    await sleep(300);
    // Before the fix: `added published` and `removed doomed` were sent again here.
    expect(changes(sent)).toEqual(['added after']);
    expect(sent[0]!.data).toMatchObject({ initial: false });
    const stored = await store.get(uid);
    expect(Object.keys(stored.docs['notifications'] ?? {}).sort()).toEqual([
      path('after'),
      path('kept'),
      path('published'),
    ]);
    const head = await bus.head(uid);
    expect(stored.cursors['notifications']).toBe(head);
    await b.detach({ handover: true });
    await lease.release(uid, 'gw-new', b.token);
    await bus.close();
  }, 60_000);
});
