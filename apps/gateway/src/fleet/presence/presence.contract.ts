import type { Presence, SessionEntry } from './presence';

/**
 * Views on one backend, one per simulated gateway instance (a memory backend may return the
 * same object each time), and its clock.
 */
export type PresenceViews = (() => Presence) & {
  /**
   * Makes `ms` pass, at once, for the session entries of `users` and the announcements of
   * `instances` (at least those; a memory backend moves its clock for everything): their
   * expiries come `ms` nearer. The tests that see an entry expire use it rather than wait a
   * short TTL out, which a busy machine could stretch past the refreshes meant to keep
   * another entry alive.
   */
  elapse(ms: number, of: { users?: string[]; instances?: string[] }): Promise<void>;
};

/** Builds a backend for one test and returns its views (see {@link PresenceViews}). */
export type MakePresence = (options: { instanceTtlMs: number }) => Promise<PresenceViews>;

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
      // Long enough that no real delay matters: time passes only through elapse().
      const ttl = 30_000;
      const views = await make({ instanceTtlMs: ttl });
      const p = views();
      const elapse = (ms: number) => views.elapse(ms, { users: [uid] });
      // gw-dead was killed: only gw-live beats, twice a TTL.
      const beat = async () => expect(await p.refresh('gw-live', [[uid, ['live']]])).toEqual([]);
      await p.add(uid, entry('dead', 'gw-dead', 1));
      await p.add(uid, entry('live', 'gw-live', 2));
      // When exactly it expires (not before the TTL, at the TTL) is checked against an
      // injected clock in memory-presence.test.ts; a Redis backend's clock is Redis's own.
      expect((await p.sessions(uid)).map((s) => s.sessionId)).toEqual(['dead', 'live']);
      await elapse(ttl / 2);
      await beat();
      await elapse(ttl / 2 + 1);
      expect(await p.sessions(uid)).toEqual([entry('live', 'gw-live', 2)]);
      // Well past the dead one's expiry: the live one is still refreshed.
      await beat();
      await elapse(ttl / 2);
      await beat();
      await elapse(ttl / 2);
      expect(await p.sessions(uid)).toEqual([entry('live', 'gw-live', 2)]);
    });

    it('refresh extends only its own entries and reports users it no longer holds', async () => {
      // Refreshed half a TTL in, checked just past the TTL: gw-2's entry is gone, gw-1's
      // refreshed one has half a TTL left (time passes only through elapse()).
      const ttl = 30_000;
      const views = await make({ instanceTtlMs: ttl });
      const p = views();
      const elapse = (ms: number) => views.elapse(ms, { users: [uid, `${uid}-b`] });
      await p.add(uid, entry('a', 'gw-1'));
      await p.add(`${uid}-b`, entry('b', 'gw-2'));
      await elapse(ttl / 2);
      const held = [uid, `${uid}-b`, `${uid}-none`].map((u) => [u, [u === uid ? 'a' : 'b']] as const);
      expect((await p.refresh('gw-1', held)).sort()).toEqual([`${uid}-b`, `${uid}-none`]);
      expect(await p.refresh('gw-1', [])).toEqual([]);
      await elapse(ttl / 2 + 1);
      expect(await p.sessions(uid)).toEqual([entry('a', 'gw-1')]);
      expect(await p.sessions(`${uid}-b`)).toEqual([]);
      expect(await p.refresh('gw-2', [[`${uid}-b`, ['b']]])).toEqual([`${uid}-b`]);
    });

    it('refresh extends only the sessions listed: an entry of the instance no session of it serves expires', async () => {
      // The same steps as above: refreshed half a TTL in, checked just past the TTL.
      const ttl = 30_000;
      const views = await make({ instanceTtlMs: ttl });
      const p = views();
      const elapse = (ms: number) => views.elapse(ms, { users: [uid] });
      await p.add(uid, entry('open', 'gw-1', 1));
      // Its session closed on gw-1, and the remove did not reach the store.
      await p.add(uid, entry('closed', 'gw-1', 2));
      await elapse(ttl / 2);
      expect(await p.refresh('gw-1', [[uid, ['open']]])).toEqual([]);
      await elapse(ttl / 2 + 1);
      expect(await p.sessions(uid)).toEqual([entry('open', 'gw-1', 1)]);
      // A listed session without an entry: the user is reported, to be written again.
      expect(await p.refresh('gw-1', [[uid, ['open', 'closed']]])).toEqual([uid]);
    });

    it('lists announced instances until their announcement expires or they retire', async () => {
      const views = await make({ instanceTtlMs: 30_000 });
      const p = views();
      const base = { sessions: 2, users: 1, startedAt: 5, version: '1.0.0' };
      const before = Date.now();
      // Short, but seconds long: it must still be listed at the next read, however late that comes.
      const short = 5_000;
      await p.announce({ ...base, id: `${uid}-a` }, 30_000);
      await p.announce({ ...base, id: `${uid}-b` }, 30_000);
      await p.announce({ ...base, id: `${uid}-short` }, short);
      const mine = async () => (await p.instances()).filter((i) => i.id.startsWith(uid));
      const listed = await mine();
      expect(listed.map((i) => i.id)).toEqual([`${uid}-a`, `${uid}-b`, `${uid}-short`]);
      expect(listed[0]).toMatchObject({ ...base, id: `${uid}-a` });
      expect(listed[0]!.lastSeen).toBeGreaterThanOrEqual(before);
      await views.elapse(short + 1, { instances: [`${uid}-short`] });
      expect((await mine()).map((i) => i.id)).toEqual([`${uid}-a`, `${uid}-b`]);
      await p.announce({ ...base, id: `${uid}-a`, sessions: 7 }, 30_000);
      expect((await mine()).find((i) => i.id === `${uid}-a`)?.sessions).toBe(7);
      await p.retire(`${uid}-a`);
      expect((await mine()).map((i) => i.id)).toEqual([`${uid}-b`]);
    });
  });
}
