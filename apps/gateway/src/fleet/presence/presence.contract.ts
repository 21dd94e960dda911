import { sleep, waitFor } from '@livebus/test-support';
import type { Presence, SessionEntry } from './presence';

/**
 * Builds a backend for one test and returns a function giving views on it, one per
 * simulated gateway instance (a memory backend may return the same object each time).
 */
export type MakePresence = (options: { instanceTtlMs: number }) => Promise<() => Presence>;

/**
 * The contract every {@link Presence} implementation passes. Run by
 * test/presence-contract.int.test.ts against memory, standalone Redis and Redis Cluster.
 */
export function presenceContract(name: string, make: MakePresence): void {
  describe(`Presence contract: ${name}`, () => {
    let n = 0;
    let uid: string;
    beforeEach(() => {
      uid = `presence-${Date.now()}-${n++}`;
    });

    const entry = (sessionId: string, instanceId: string, connectedAt = 1): SessionEntry => ({
      sessionId,
      instanceId,
      route: `/r/${sessionId}`,
      connectedAt,
    });

    it('adds, lists oldest first and removes sessions', async () => {
      const p = (await make({ instanceTtlMs: 30_000 }))();
      expect(await p.sessions(uid)).toEqual([]);
      expect(await p.add(uid, entry('b', 'gw-2', 20))).toEqual({ refused: false, count: 1 });
      expect(await p.add(uid, entry('a', 'gw-1', 10))).toEqual({ refused: false, count: 2 });
      expect(await p.sessions(uid)).toEqual([entry('a', 'gw-1', 10), entry('b', 'gw-2', 20)]);
      expect(await p.remove(uid, 'a', 'gw-1')).toBe(true);
      expect(await p.remove(uid, 'a', 'gw-1')).toBe(false);
      expect(await p.sessions(uid)).toEqual([entry('b', 'gw-2', 20)]);
      expect(await p.sessions(`${uid}-other`)).toEqual([]);
      expect(await p.remove(uid, 'b', 'gw-2')).toBe(true);
      expect(await p.sessions(uid)).toEqual([]);
    });

    it('a session id added again (reconnect on another instance) replaces the entry and says which', async () => {
      const p = (await make({ instanceTtlMs: 30_000 }))();
      await p.add(uid, entry('s', 'gw-1', 1));
      // holderTold: whether the store told gw-1 itself (optional: else the hello does).
      const { holderTold: _told, ...added } = (await p.add(uid, entry('s', 'gw-2', 2))) as { holderTold?: boolean };
      expect(added).toEqual({ refused: false, replaced: entry('s', 'gw-1', 1), count: 1 });
      // The same instance again: nobody else to tell.
      expect(await p.add(uid, entry('s', 'gw-2', 3))).toEqual({
        refused: false,
        replaced: entry('s', 'gw-2', 2),
        count: 1,
      });
      expect(await p.sessions(uid)).toEqual([entry('s', 'gw-2', 3)]);
    });

    it('a re-announce writes its own entry again, never over another instance holding the session', async () => {
      const p = (await make({ instanceTtlMs: 30_000 }))();
      // Absent (expired during a stall): written.
      expect(await p.add(uid, entry('s', 'gw-1', 1), { reannounce: true })).toEqual({ refused: false, count: 1 });
      // A reconnect took it over on gw-2: gw-1's re-announce leaves it there, and tells nobody.
      await p.add(uid, entry('s', 'gw-2', 2));
      expect(await p.add(uid, entry('s', 'gw-1', 3), { reannounce: true })).toEqual({
        refused: true,
        heldElsewhere: true,
        count: 1,
      });
      expect(await p.sessions(uid)).toEqual([entry('s', 'gw-2', 2)]);
      // Its own: written again.
      const again = await p.add(uid, entry('s', 'gw-2', 4), { reannounce: true });
      expect(again).toEqual({ refused: false, replaced: entry('s', 'gw-2', 2), count: 1 });
    });

    it('remove is fenced: the old instance cannot remove the entry a newer instance holds', async () => {
      const p = (await make({ instanceTtlMs: 30_000 }))();
      await p.add(uid, entry('s', 'gw-1'));
      await p.add(uid, entry('s', 'gw-2'));
      expect(await p.remove(uid, 's', 'gw-1')).toBe(false);
      expect(await p.sessions(uid)).toEqual([entry('s', 'gw-2')]);
      expect(await p.remove(uid, 'never', 'gw-1')).toBe(false);
    });

    it('refuses sessions beyond maxSessions atomically under concurrency', async () => {
      const view = await make({ instanceTtlMs: 30_000 });
      const stores = [view(), view(), view()];
      const results = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          stores[i % 3]!.add(uid, entry(`s${i}`, `gw-${i % 3}`, i), { maxSessions: 3 }),
        ),
      );
      expect(results.filter((r) => !r.refused)).toHaveLength(3);
      expect(results.filter((r) => r.refused).every((r) => r.count === 3)).toBe(true);
      const live = await stores[0]!.sessions(uid);
      expect(live).toHaveLength(3);
      // Re-adding a session that is already counted is a replacement, not a fourth session.
      const again = await stores[1]!.add(uid, { ...live[0]!, instanceId: 'gw-9' }, { maxSessions: 3 });
      expect(again).toMatchObject({ refused: false, count: 3, replaced: live[0] });
      expect(await stores[2]!.add(uid, entry('extra', 'gw-1'), { maxSessions: 3 })).toEqual({
        refused: true,
        count: 3,
      });
      expect(await stores[2]!.add(uid, entry('extra', 'gw-1'), { maxSessions: 0 })).toEqual({
        refused: false,
        count: 4,
      });
    });

    it("a dead instance's entries expire within the TTL while a refreshed instance's stay", async () => {
      const ttl = 1_000;
      const p = (await make({ instanceTtlMs: ttl }))();
      await p.add(uid, entry('dead', 'gw-dead', 1));
      await p.add(uid, entry('live', 'gw-live', 2));
      const beat = setInterval(() => void p.refresh('gw-live', [[uid, ['live']]]), 200);
      try {
        // When exactly it expires (not before the TTL, at the TTL) is checked against an
        // injected clock in memory-presence.test.ts; a Redis backend's clock is Redis's own.
        expect((await p.sessions(uid)).map((s) => s.sessionId)).toEqual(['dead', 'live']);
        await waitFor(
          async () => (await p.sessions(uid)).every((s) => s.instanceId !== 'gw-dead'),
          'the dead instance to expire',
          ttl + 10_000,
        );
        await sleep(ttl / 2); // well past the dead one's expiry: the live one is still refreshed
        expect(await p.sessions(uid)).toEqual([entry('live', 'gw-live', 2)]);
      } finally {
        clearInterval(beat);
      }
    });

    it('refresh extends only its own entries and reports users it no longer holds', async () => {
      // Half a TTL of margin either side for a loaded host: refreshed 1 s into a 2 s TTL, and
      // checked as soon as gw-2's entry is gone (at 2 s), well inside gw-1's refreshed one (3 s).
      const p = (await make({ instanceTtlMs: 2_000 }))();
      await p.add(uid, entry('a', 'gw-1'));
      await p.add(`${uid}-b`, entry('b', 'gw-2'));
      await sleep(1_000);
      const held = [uid, `${uid}-b`, `${uid}-none`].map((u) => [u, [u === uid ? 'a' : 'b']] as const);
      expect((await p.refresh('gw-1', held)).sort()).toEqual([`${uid}-b`, `${uid}-none`]);
      expect(await p.refresh('gw-1', [])).toEqual([]);
      await waitFor(async () => (await p.sessions(`${uid}-b`)).length === 0, "gw-2's entry to expire", 12_000, 20);
      expect(await p.sessions(uid)).toEqual([entry('a', 'gw-1')]);
      expect(await p.sessions(`${uid}-b`)).toEqual([]);
      expect(await p.refresh('gw-2', [[`${uid}-b`, ['b']]])).toEqual([`${uid}-b`]);
    });

    it('refresh extends only the sessions listed: an entry of the instance no session of it serves expires', async () => {
      // The same margins as above: refreshed 1 s into a 2 s TTL.
      const p = (await make({ instanceTtlMs: 2_000 }))();
      await p.add(uid, entry('open', 'gw-1', 1));
      // Its session closed on gw-1, and the remove did not reach the store.
      await p.add(uid, entry('closed', 'gw-1', 2));
      await sleep(1_000);
      expect(await p.refresh('gw-1', [[uid, ['open']]])).toEqual([]);
      await waitFor(async () => (await p.sessions(uid)).length === 1, 'the unlisted entry to expire', 12_000, 20);
      expect(await p.sessions(uid)).toEqual([entry('open', 'gw-1', 1)]);
      // A listed session without an entry: the user is reported, to be written again.
      expect(await p.refresh('gw-1', [[uid, ['open', 'closed']]])).toEqual([uid]);
    });

    it('lists announced instances until their announcement expires or they retire', async () => {
      const p = (await make({ instanceTtlMs: 30_000 }))();
      const base = { sessions: 2, users: 1, startedAt: 5, version: '1.0.0' };
      const before = Date.now();
      await p.announce({ ...base, id: `${uid}-a` }, 30_000);
      await p.announce({ ...base, id: `${uid}-b` }, 30_000);
      await p.announce({ ...base, id: `${uid}-short` }, 300);
      const mine = async () => (await p.instances()).filter((i) => i.id.startsWith(uid));
      const listed = await mine();
      expect(listed.map((i) => i.id)).toEqual([`${uid}-a`, `${uid}-b`, `${uid}-short`]);
      expect(listed[0]).toMatchObject({ ...base, id: `${uid}-a` });
      expect(listed[0]!.lastSeen).toBeGreaterThanOrEqual(before);
      await waitFor(async () => (await mine()).length === 2, 'the short announcement to expire', 2_000);
      await p.announce({ ...base, id: `${uid}-a`, sessions: 7 }, 30_000);
      expect((await mine()).find((i) => i.id === `${uid}-a`)?.sessions).toBe(7);
      await p.retire(`${uid}-a`);
      expect((await mine()).map((i) => i.id)).toEqual([`${uid}-b`]);
    });
  });
}
