import type { Presence } from '../presence/presence';
import type { RegistryStore } from './registry-store';

/** A store with the presence that prunes it (over the same data, with a leave grace), and its clock. */
export interface RegistryWithPresence {
  store: RegistryStore;
  presence: Presence;
  /** Makes `ms` pass, at once, for the user's presence and registry entries. */
  elapse(userId: string, ms: number): Promise<void>;
}

/**
 * The contract every {@link RegistryStore} implementation passes. Run by
 * test/registry-contract.int.test.ts against the in-memory and Redis stores.
 * `withPresence` builds one with its presence for the given leave grace.
 */
export function registryStoreContract(
  name: string,
  make: () => Promise<RegistryStore>,
  withPresence: (leaveGraceMs: number) => Promise<RegistryWithPresence>,
): void {
  describe(`RegistryStore contract: ${name}`, () => {
    let store: RegistryStore;
    let n = 0;
    let uid: string;
    beforeEach(async () => {
      store = await make();
      uid = `contract-${Date.now()}-${n++}`;
    });
    afterEach(() => store.close());

    const session = (id: string, at: string) => ({
      session_id: id,
      route: `/r/${id}`,
      instance_id: 'gw',
      registered_at: at,
    });

    it('registers sessions idempotently and lists them oldest first', async () => {
      await store.registerSession(uid, session('b', '2026-01-01T00:00:02.000Z'));
      await store.registerSession(uid, session('a', '2026-01-01T00:00:01.000Z'));
      await store.registerSession(uid, session('b', '2026-01-01T00:00:02.000Z'));
      expect((await store.getSessions(uid)).map((s) => s.session_id)).toEqual(['a', 'b']);
      expect((await store.getSessions(uid))[0]).toEqual(session('a', '2026-01-01T00:00:01.000Z'));
    });

    it('refuses a new session id past maxSessions, atomically, and always takes one already registered', async () => {
      const at = '2026-01-01T00:00:01.000Z';
      // Concurrent registrations of new ids: exactly maxSessions of them pass.
      const stored = await Promise.all(
        ['a', 'b', 'c', 'd', 'e'].map((id) => store.registerSession(uid, session(id, at), 3)),
      );
      expect(stored.filter(Boolean)).toHaveLength(3);
      const kept = (await store.getSessions(uid)).map((s) => s.session_id);
      expect(kept).toHaveLength(3);
      const refused = ['a', 'b', 'c', 'd', 'e'].find((id) => !kept.includes(id)) as string;
      expect(await store.registerSession(uid, session(refused, at), 3)).toBe(false);
      // Re-registering a kept id always works (here with a new route), and a removal makes room.
      const again = { ...session(kept[0] as string, at), route: '/moved' };
      expect(await store.registerSession(uid, again, 3)).toBe(true);
      expect((await store.getSessions(uid)).find((s) => s.session_id === kept[0])?.route).toBe('/moved');
      await store.unregisterSession(uid, kept[1] as string);
      expect(await store.registerSession(uid, session(refused, at), 3)).toBe(true);
      expect(await store.registerSession(`${uid}-other`, session('x', at), 3)).toBe(true);
    });

    it('unregisters one session and says whether it was there', async () => {
      await store.registerSession(uid, session('a', '2026-01-01T00:00:01.000Z'));
      expect(await store.unregisterSession(uid, 'a')).toBe(true);
      expect(await store.unregisterSession(uid, 'a')).toBe(false);
      expect(await store.getSessions(uid)).toEqual([]);
    });

    it('lists no entry past its leave grace, though nothing pruned it since (a read answers as a registration counts)', async () => {
      // Within the presence entries' TTL: only the left session's grace runs out.
      const grace = 10_000;
      const { store, presence, elapse } = await withPresence(grace);
      for (const [id, at] of [
        ['keep', '2026-01-01T00:00:01.000Z'],
        ['left', '2026-01-01T00:00:02.000Z'],
      ] as const) {
        await presence.add(uid, { sessionId: id, instanceId: 'gw', route: '/', connectedAt: 1 });
        await store.registerSession(uid, session(id, at));
      }
      await presence.remove(uid, 'left', 'gw');
      const listed = async () => (await store.getSessions(uid)).map((s) => s.session_id);
      expect(await listed()).toEqual(['keep', 'left']); // in its grace, for the session to resume with its id
      await elapse(uid, grace + 1);
      expect(await listed()).toEqual(['keep']);
      await store.close();
    });

    it('keeps users apart', async () => {
      await store.registerSession(uid, session('a', '2026-01-01T00:00:01.000Z'));
      expect(await store.getSessions(`${uid}-other`)).toEqual([]);
    });

    it('stores, returns and expires the unified document', async () => {
      expect(await store.getUnified(uid)).toBeUndefined();
      const doc = {
        user_info: { user_id: uid, status: 'online' as const },
        companies: { current_company_id: null },
        services: { inbox: { unread: 2 }, empty: {} },
      };
      await store.putUnified(uid, doc, 1);
      expect(await store.getUnified(uid)).toEqual(doc);
      await store.touchUnified(uid, 60);
      await new Promise((r) => setTimeout(r, 1_100));
      expect(await store.getUnified(uid)).toEqual(doc); // the touch extended it
      await store.putUnified(uid, doc, 1);
      await new Promise((r) => setTimeout(r, 1_100));
      expect(await store.getUnified(uid)).toBeUndefined();
    });

    it('answers ping', async () => {
      await expect(store.ping()).resolves.toBeUndefined();
    });
  });
}
