import type { AppEvent } from '@livebus/protocol';
import { waitFor } from '@livebus/test-support';
import type { Firestore } from 'firebase-admin/firestore';
import type { Lease } from '../lease/lease';
import { MemoryLease } from '../lease/memory-lease';
import type { Logger } from '../logger';
import { CarryOver, mergeCarried } from './carry-over';
import { FirestoreListenerSource } from './firestore-listener-source';
import { ListenersManager } from './listeners-manager';
import { MemoryWatermarkStore } from './memory-watermark-store';
import type { WatermarkStore } from './watermark-store';

const silent: Logger = { error() {}, warn() {}, info() {}, debug() {} };

interface FakeDoc {
  updateTime: { seconds: number; nanoseconds: number };
  createTime: { seconds: number; nanoseconds: number };
  data: Record<string, unknown>;
}

/**
 * One Firestore collection as the listener source sees it: a new listener first gets
 * every document as `added`, then each write as one change; read times and update
 * times come from one clock, like Firestore's commit times.
 */
function fakeFirestore() {
  const docs = new Map<string, FakeDoc>();
  const listeners = new Set<(changes: [string, 'added' | 'modified' | 'removed'][]) => void>();
  let clock = 1;
  const now = () => ({ seconds: clock, nanoseconds: 0 });
  const snapshot = (changes: [string, 'added' | 'modified' | 'removed'][]) => ({
    size: docs.size,
    readTime: now(),
    docChanges: () =>
      changes.map(([path, type]) => {
        const d = docs.get(path) as FakeDoc;
        return {
          type,
          doc: { ref: { path }, updateTime: d.updateTime, createTime: d.createTime, data: () => d.data },
        };
      }),
  });
  const query = {
    where: () => query,
    onSnapshot(next: (s: unknown) => void) {
      const deliver = (changes: [string, 'added' | 'modified' | 'removed'][]) => next(snapshot(changes));
      listeners.add(deliver);
      setImmediate(() => listeners.has(deliver) && deliver([...docs.keys()].map((p) => [p, 'added'])));
      return () => listeners.delete(deliver);
    },
  };
  return {
    firestore: { collection: () => query } as unknown as Firestore,
    write(path: string, data: Record<string, unknown>) {
      clock++;
      const before = docs.get(path);
      docs.set(path, { updateTime: now(), createTime: before?.createTime ?? now(), data });
      for (const l of listeners) l([[path, before ? 'modified' : 'added']]);
    },
    get open() {
      return listeners.size;
    },
  };
}

/** Redis as the lease and the mark store see it: `down` makes every call fail, data kept. */
function redisLike() {
  const outage = { down: false };
  const guard =
    <A extends unknown[], R>(call: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      if (outage.down) throw new Error('connect ECONNREFUSED');
      return call(...args);
    };
  const memory = new MemoryLease();
  const lease: Lease = {
    kind: 'redis',
    acquire: guard((...a: Parameters<Lease['acquire']>) => memory.acquire(...a)),
    renew: guard((...a: Parameters<Lease['renew']>) => memory.renew(...a)),
    release: guard((...a: Parameters<Lease['release']>) => memory.release(...a)),
    holder: guard((...a: Parameters<Lease['holder']>) => memory.holder(...a)),
  };
  const stored = new MemoryWatermarkStore(memory);
  const marks: WatermarkStore = {
    kind: 'redis',
    get: guard((...a: Parameters<WatermarkStore['get']>) => stored.get(...a)),
    set: guard((...a: Parameters<WatermarkStore['set']>) => stored.set(...a)),
    forget: guard((...a: Parameters<WatermarkStore['forget']>) => stored.forget(...a)),
    clear: guard((...a: Parameters<WatermarkStore['clear']>) => stored.clear(...a)),
  };
  return { outage, lease, marks, stored };
}

function setup(options: { blockEmitsWhileDown: boolean; leaseTtlMs: number }) {
  const fs = fakeFirestore();
  const redis = redisLike();
  const delivered: string[] = [];
  let backUp: () => void = () => {};
  let isBack = Promise.resolve();
  const down = (value: boolean) => {
    redis.outage.down = value;
    if (value) isBack = new Promise((resolve) => (backUp = resolve));
    else backUp();
  };
  const source = new FirestoreListenerSource({
    firestore: fs.firestore,
    listeners: [{ name: 'docs', collection: 'users/{uid}/docs' }],
    marks: redis.marks,
    logger: silent,
    retryMinMs: 10,
  });
  const manager = new ListenersManager({
    sources: [source],
    detachDelayMs: 50,
    logger: silent,
    cleanupRegistry: async () => 'cleaned',
    lease: redis.lease,
    instanceId: 'a',
    leaseTtlMs: options.leaseTtlMs,
    emit: async (_uid: string, event: AppEvent) => {
      const data = event.data as { path: string; update_time: string; change: string };
      // The bus publish waits (retries, outbox) while Redis is away; it lands once it is back.
      if (options.blockEmitsWhileDown && redis.outage.down) await isBack;
      delivered.push(`${data.change} ${data.path} ${data.update_time}`);
    },
  });
  return { fs, redis, delivered, down, manager };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('carry-over across a Redis outage', () => {
  it('delivers a change once when Redis is away longer than the lease TTL while its publish waits', async () => {
    const { fs, redis, delivered, down, manager } = setup({ blockEmitsWhileDown: true, leaseTtlMs: 240 });
    fs.write('users/u1/docs/a', { v: 1 });
    await manager.sessionOpened('u1', 's1');
    await waitFor(() => delivered.length === 1, 'initial event');
    await waitFor(async () => (await redis.stored.get('u1')).marks.docs !== undefined, 'first mark');

    down(true);
    fs.write('users/u1/docs/a', { v: 2 }); // its publish waits for Redis
    await sleep(20);
    // The lease is not renewable for a whole TTL: the manager releases the listeners,
    // waiting for the publish in flight.
    await waitFor(() => fs.open === 0, 'listener released', 3_000);
    fs.write('users/u1/docs/b', { v: 1 }); // written while no listener runs
    await sleep(100);
    down(false); // back with its data: the stale mark, the lease expired

    await waitFor(() => manager.isAttached('u1') && fs.open === 1, 're-attached', 3_000);
    await waitFor(() => delivered.length >= 3, 'b delivered', 3_000);
    await sleep(100);
    fs.write('users/u1/docs/a', { v: 3 });
    await waitFor(() => delivered.length >= 4, 'a v3 delivered');
    await sleep(50);

    expect(delivered).toEqual([
      'added users/u1/docs/a 1970-01-01T00:00:02.000000Z',
      'modified users/u1/docs/a 1970-01-01T00:00:03.000000Z',
      'added users/u1/docs/b 1970-01-01T00:00:04.000000Z',
      'modified users/u1/docs/a 1970-01-01T00:00:05.000000Z',
    ]);
    // The published change reached the store under the new token.
    const resume = await redis.stored.get('u1');
    expect(resume.docs.docs).toEqual({ 'users/u1/docs/a': '5000000000', 'users/u1/docs/b': '4000000000' });
    expect(resume.marks.docs).toBe('5000000000');
    manager.sessionClosed('u1', 's1');
    await manager.flush();
  });

  it('stores a mark Redis refused while away at the next lease renewal, before any new snapshot', async () => {
    const { fs, redis, delivered, down, manager } = setup({ blockEmitsWhileDown: false, leaseTtlMs: 600 });
    fs.write('users/u1/docs/a', { v: 1 });
    await manager.sessionOpened('u1', 's1');
    await waitFor(() => delivered.length === 1, 'initial event');
    down(true);
    fs.write('users/u1/docs/a', { v: 2 }); // published, its mark not stored
    await waitFor(() => delivered.length === 2, 'a v2 delivered');
    await sleep(50);
    down(false); // within the TTL: the lease is still held
    await waitFor(async () => (await redis.stored.get('u1')).marks.docs === '3000000000', 'mark stored', 1_000);
    expect((await redis.stored.get('u1')).docs.docs).toEqual({ 'users/u1/docs/a': '3000000000' });
    expect(manager.isAttached('u1')).toBe(true);
    manager.sessionClosed('u1', 's1');
    await manager.flush();
  });
});

describe('mergeCarried', () => {
  const stored = { mark: '10', docs: { a: '5', b: '8', c: '9' }, overflowed: false };

  it('keeps the later event per path and the later mark', () => {
    const merged = mergeCarried(stored, {
      mark: '12',
      put: { a: '11', b: '7', d: '12' },
      del: { c: '12' },
      overflow: false,
    });
    expect(merged.mark).toBe('12');
    expect(merged.docs).toEqual({ a: '11', b: '8', d: '12' });
    expect(merged.unsaved).toEqual({ mark: '12', put: { a: '11', d: '12' }, del: { c: '12' }, overflow: false });
  });

  it('keeps a document delivered again after the carried removal, and never moves the mark back', () => {
    const merged = mergeCarried(stored, { mark: '6', put: {}, del: { b: '6' }, overflow: false });
    expect(merged.docs).toEqual(stored.docs);
    expect(merged.mark).toBe('10');
    expect(merged.unsaved?.mark).toBe('10');
  });

  it('replays a newer carried mark over an older one', () => {
    const carry = new CarryOver();
    carry.keep('l', { mark: '5', put: { a: '5' }, del: { b: '4' }, overflow: false });
    carry.keep('l', { mark: '7', put: { b: '7' }, del: { a: '6' }, overflow: false });
    expect(carry.take('l')).toEqual({ mark: '7', put: { b: '7' }, del: { a: '6' }, overflow: false });
    expect(carry.take('l')).toBeUndefined();
  });
});
