import { waitFor } from '@livebus/test-support';
import type { Presence } from '../presence/presence';
import type { RegistryStore } from '../registry/registry-store';
import type { DetachDecision } from './detach-decision';

/** One backend for a test: presence, registry and decision over the same data. */
export interface DetachDecisionFixture {
  presence: Presence;
  registry: RegistryStore;
  decision: DetachDecision;
}

/**
 * The contract every {@link DetachDecision} implementation passes, together with
 * its presence and registry. Run by test/detach-decision-contract.int.test.ts
 * against memory, standalone Redis and Redis Cluster.
 */
export function detachDecisionContract(
  name: string,
  make: (options: { instanceTtlMs: number; claimTtlMs?: number }) => Promise<DetachDecisionFixture>,
): void {
  describe(`DetachDecision contract: ${name}`, () => {
    let n = 0;
    let uid: string;
    beforeEach(() => {
      uid = `detach-${Date.now()}-${n++}`;
    });

    const online = (userId: string) => ({
      user_info: { user_id: userId, status: 'online' as const },
      companies: { current_company_id: 'acme' },
      services: { inbox: { unread: 1 } },
    });
    const registered = (id: string, instance: string) => ({
      session_id: id,
      route: `/r/${id}`,
      instance_id: instance,
      registered_at: '2026-01-01T00:00:00.000Z',
    });
    const entry = (id: string, instance: string) => ({
      sessionId: id,
      instanceId: instance,
      route: '/',
      connectedAt: 1,
    });

    it('answers present, changing nothing, while another instance holds a session', async () => {
      const { presence, registry, decision } = await make({ instanceTtlMs: 30_000 });
      await presence.add(uid, entry('s2', 'gw-2'));
      await registry.registerSession(uid, registered('s2', 'gw-2'));
      await registry.putUnified(uid, online(uid), 60);
      expect(await decision.cleanupIfAbsent(uid)).toBe('present');
      expect((await registry.getSessions(uid)).map((s) => s.session_id)).toEqual(['s2']);
      expect((await registry.getUnified(uid))?.user_info.status).toBe('online');
      expect(await presence.sessions(uid)).toEqual([entry('s2', 'gw-2')]);
    });

    it('cleans when no instance holds a session: sessions gone, unified offline, idempotent', async () => {
      const { presence, registry, decision } = await make({ instanceTtlMs: 30_000 });
      await presence.add(uid, entry('s1', 'gw-1'));
      await registry.registerSession(uid, registered('s1', 'gw-1'));
      await registry.registerSession(uid, registered('ghost', 'gw-0'));
      await registry.putUnified(uid, online(uid), 60);
      await presence.remove(uid, 's1', 'gw-1');
      expect(await decision.cleanupIfAbsent(uid)).toBe('cleaned');
      expect(await registry.getSessions(uid)).toEqual([]);
      expect(await registry.getUnified(uid)).toEqual({
        ...online(uid),
        user_info: { user_id: uid, status: 'offline' },
      });
      expect(await decision.cleanupIfAbsent(uid)).toBe('cleaned');
      expect(await decision.cleanupIfAbsent(`${uid}-never-seen`)).toBe('cleaned');
      expect(await registry.getUnified(`${uid}-never-seen`)).toBeUndefined();
    });

    it("cleans once a dead instance's session has expired from presence", async () => {
      const { presence, registry, decision } = await make({ instanceTtlMs: 500 });
      await presence.add(uid, entry('s', 'gw-dead'));
      await registry.registerSession(uid, registered('s', 'gw-dead'));
      await registry.putUnified(uid, online(uid), 60);
      expect(await decision.cleanupIfAbsent(uid)).toBe('present');
      await waitFor(async () => (await decision.cleanupIfAbsent(uid)) === 'cleaned', 'the entry to expire', 1_500);
      expect(await registry.getSessions(uid)).toEqual([]);
      expect((await registry.getUnified(uid))?.user_info.status).toBe('offline');
    });

    it('claims each departure for exactly one of the instances deciding it at once', async () => {
      const { presence, decision } = await make({ instanceTtlMs: 30_000 });
      await presence.add(uid, entry('a', 'gw-a'));
      await presence.add(uid, entry('b', 'gw-b'));
      expect(await decision.claim(uid, 'gw-a')).toBe('present');
      await presence.remove(uid, 'a', 'gw-a');
      await presence.remove(uid, 'b', 'gw-b');
      const claimants = ['gw-a', 'gw-b', 'gw-c', 'gw-d'];
      const claims = await Promise.all(claimants.map((id) => decision.claim(uid, id)));
      expect(claims.filter((c) => c === 'won')).toHaveLength(1);
      expect(claims.filter((c) => c === 'taken')).toHaveLength(3);
      // The winner asking again (its answer lost) has it still; any other is still refused.
      expect(await decision.claim(uid, claimants[claims.indexOf('won')] as string)).toBe('won');
      expect(await decision.claim(uid, claimants[claims.indexOf('taken')] as string)).toBe('taken');
    });

    it('decides the next departure afresh once a session was added, and lets a claim expire', async () => {
      const { presence, decision } = await make({ instanceTtlMs: 30_000, claimTtlMs: 400 });
      expect(await decision.claim(uid, 'gw-a')).toBe('won');
      await presence.add(uid, entry('back', 'gw-b'));
      expect(await decision.claim(uid, 'gw-a')).toBe('present');
      await presence.remove(uid, 'back', 'gw-b');
      expect(await decision.claim(uid, 'gw-b')).toBe('won');
      expect(await decision.claim(uid, 'gw-a')).toBe('taken');
      await waitFor(async () => (await decision.claim(uid, 'gw-a')) === 'won', 'the claim to expire', 2_000);
    });

    it('a reconnect added before the decision keeps the user online', async () => {
      const { presence, registry, decision } = await make({ instanceTtlMs: 30_000 });
      await registry.putUnified(uid, online(uid), 60);
      // Decision and reconnect race: whichever runs first, the outcome is consistent with it.
      const [outcome] = await Promise.all([decision.cleanupIfAbsent(uid), presence.add(uid, entry('back', 'gw-3'))]);
      const status = (await registry.getUnified(uid))?.user_info.status;
      expect(status).toBe(outcome === 'present' ? 'online' : 'offline');
      expect(await decision.cleanupIfAbsent(uid)).toBe('present');
    });
  });
}
