import type { Lease, LeaseHolder } from '../fleet/lease/lease';
import type { WatermarkStore } from './watermark-store';

/** A store under test and the lease its writes are fenced by (the same backend's). */
export interface WatermarkStoreFixture {
  store: WatermarkStore;
  lease: Lease;
}

/**
 * The contract every {@link WatermarkStore} passes: run by
 * test/watermark-store-contract.int.test.ts against memory, standalone Redis and
 * Redis Cluster. `make` gives a fresh store and the lease of the same backend.
 */
export function watermarkStoreContract(name: string, make: () => Promise<WatermarkStoreFixture>): void {
  describe(`WatermarkStore contract: ${name}`, () => {
    let n = 0;
    let uid: string;
    beforeEach(() => {
      uid = `wm-${Date.now()}-${n++}`;
    });
    const hold = async (lease: Lease, owner = 'gw-a'): Promise<LeaseHolder> => {
      const got = await lease.acquire(uid, owner, 60_000);
      if (!got) throw new Error('lease not acquired');
      return { owner, token: got.token };
    };

    it('gives an empty resume for a user with nothing stored', async () => {
      const { store } = await make();
      expect(await store.get(uid)).toEqual({ marks: {}, docs: {}, overflowed: [], cursors: {} });
    });

    it("stores marks per listener and applies each snapshot's puts and deletions to its delivered set", async () => {
      const { store, lease } = await make();
      const fence = await hold(lease);
      expect(await store.set(uid, 'tasks', '100', fence, { put: { 'c/a': '90', 'c/b': '95' }, del: [] })).toBe(true);
      expect(await store.set(uid, 'tasks', '110', fence, { put: { 'c/b': '105', 'c/c': '108' }, del: ['c/a'] })).toBe(
        true,
      );
      expect(await store.set(uid, 'notes', '7', fence)).toBe(true);
      expect(await store.get(uid)).toEqual({
        marks: { tasks: '110', notes: '7' },
        docs: { tasks: { 'c/b': '105', 'c/c': '108' } },
        overflowed: [],
        cursors: {},
      });
    });

    it('flags an overflowed listener and keeps the flag', async () => {
      const { store, lease } = await make();
      const fence = await hold(lease);
      await store.set(uid, 'big', '1', fence, { put: { 'c/a': '1' }, del: [], overflow: true });
      await store.set(uid, 'big', '2', fence, { put: {}, del: [] });
      await store.set(uid, 'small', '2', fence, { put: { 'c/z': '2' }, del: [] });
      const resume = await store.get(uid);
      expect(resume.overflowed).toEqual(['big']);
      expect(resume.marks).toEqual({ big: '2', small: '2' });
    });

    it('stores the cursor with the mark, keeps it when a write has none, and forgets it with the listener', async () => {
      const { store, lease } = await make();
      const fence = await hold(lease);
      await store.set(uid, 'l', '10', fence, { put: {}, del: [] });
      expect((await store.get(uid)).cursors).toEqual({});
      await store.set(uid, 'l', '11', fence, { put: {}, del: [] }, 'e:3');
      await store.set(uid, 'm', '11', fence, undefined, 'e:4');
      await store.set(uid, 'l', '12', fence, { put: {}, del: [] });
      expect(await store.get(uid)).toMatchObject({ marks: { l: '12', m: '11' }, cursors: { l: 'e:3', m: 'e:4' } });
      await store.forget(uid, 'l');
      expect((await store.get(uid)).cursors).toEqual({ m: 'e:4' });
      await store.clear(uid);
      expect((await store.get(uid)).cursors).toEqual({});
    });

    it('stores a cursor without a mark (a failure told before any change), keeping the stored mark', async () => {
      const { store, lease } = await make();
      const fence = await hold(lease);
      expect(await store.set(uid, 'l', undefined, fence, { put: {}, del: [] }, 'e:2')).toBe(true);
      expect(await store.get(uid)).toEqual({ marks: {}, docs: {}, overflowed: [], cursors: { l: 'e:2' } });
      await store.set(uid, 'm', '5', fence, { put: { 'c/a': '4' }, del: [] });
      await store.set(uid, 'm', undefined, fence, { put: {}, del: [] }, 'e:6');
      await store.set(uid, 'l', '7', fence, { put: {}, del: [] });
      expect(await store.get(uid)).toMatchObject({ marks: { l: '7', m: '5' }, cursors: { l: 'e:2', m: 'e:6' } });
      expect(await store.set(uid, 'n', undefined, { owner: 'gw-b', token: fence.token }, undefined, 'e:9')).toBe(false);
      expect((await store.get(uid)).cursors).toEqual({ l: 'e:2', m: 'e:6' });
    });

    it('refuses a write whose fence no longer holds the lease, and changes nothing', async () => {
      const { store, lease } = await make();
      const old = await hold(lease, 'gw-a');
      await store.set(uid, 'l', '10', old, { put: { 'c/a': '10' }, del: [] }, 'e:1');
      expect(await lease.release(uid, old.owner, old.token)).toBe(true);
      const next = await hold(lease, 'gw-b');
      expect(await store.set(uid, 'l', '20', old, { put: { 'c/b': '20' }, del: ['c/a'] }, 'e:2')).toBe(false);
      expect(await store.set(uid, 'l', '20', { owner: 'gw-b', token: old.token }, undefined, 'e:2')).toBe(false);
      expect(await store.set(uid, 'l', '20', { owner: 'gw-a', token: next.token })).toBe(false);
      expect(await store.get(uid)).toEqual({
        marks: { l: '10' },
        docs: { l: { 'c/a': '10' } },
        overflowed: [],
        cursors: { l: 'e:1' },
      });
      expect(await store.set(uid, 'l', '20', next, { put: {}, del: ['c/a'] })).toBe(true);
      expect((await store.get(uid)).marks).toEqual({ l: '20' });
    });

    it('refuses every write while nobody holds the lease', async () => {
      const { store, lease } = await make();
      const fence = await hold(lease);
      await lease.release(uid, fence.owner, fence.token);
      expect(await store.set(uid, 'l', '1', fence)).toBe(false);
      expect(await store.get(uid)).toEqual({ marks: {}, docs: {}, overflowed: [], cursors: {} });
    });

    it("forgets one listener's mark and documents, keeping the others; clear forgets them all", async () => {
      const { store, lease } = await make();
      const fence = await hold(lease);
      await store.set(uid, 'a', '1', fence, { put: { 'c/1': '1' }, del: [], overflow: true });
      await store.set(uid, 'ab', '2', fence, { put: { 'c/2': '2' }, del: [] });
      await store.forget(uid, 'a');
      expect(await store.get(uid)).toEqual({
        marks: { ab: '2' },
        docs: { ab: { 'c/2': '2' } },
        overflowed: [],
        cursors: {},
      });
      await store.forget(uid, 'never-seen');
      await store.clear(uid);
      expect(await store.get(uid)).toEqual({ marks: {}, docs: {}, overflowed: [], cursors: {} });
    });

    it('keeps listener names and document paths as given (spaces, percent signs, unicode)', async () => {
      const { store, lease } = await make();
      const fence = await hold(lease);
      await store.set(uid, 'my listener %20', '5', fence, { put: { 'c/a b/d%2F': '4', 'c/é': '5' }, del: [] }, 'e:9');
      expect(await store.get(uid)).toEqual({
        marks: { 'my listener %20': '5' },
        docs: { 'my listener %20': { 'c/a b/d%2F': '4', 'c/é': '5' } },
        overflowed: [],
        cursors: { 'my listener %20': 'e:9' },
      });
    });

    it("keeps users apart: one user's writes and clear do not touch another's", async () => {
      const { store, lease } = await make();
      const fence = await hold(lease);
      const other = `${uid}-other`;
      const got = await lease.acquire(other, 'gw-a', 60_000);
      await store.set(other, 'l', '9', { owner: 'gw-a', token: got!.token });
      await store.set(uid, 'l', '1', fence);
      await store.clear(uid);
      expect((await store.get(other)).marks).toEqual({ l: '9' });
    });
  });
}
