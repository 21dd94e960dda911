import { MemoryPresence } from './memory-presence';
import type { SessionEntry } from './presence';

const entry = (sessionId: string, instanceId: string, connectedAt: number): SessionEntry => ({
  sessionId,
  instanceId,
  route: `/r/${sessionId}`,
  connectedAt,
});

describe('MemoryPresence expiry, on an injected clock', () => {
  it("drops a dead instance's entries exactly at the TTL, keeps a refreshed instance's", async () => {
    let now = 1_000;
    const ttl = 1_000;
    const p = new MemoryPresence({ instanceTtlMs: ttl, now: () => now });
    await p.add('u', entry('dead', 'gw-dead', 1));
    await p.add('u', entry('live', 'gw-live', 2));
    now += ttl / 2;
    expect(await p.refresh('gw-live', [['u', ['live']]])).toEqual([]);
    now += ttl / 2 - 1; // 1 ms before the dead one's expiry
    expect((await p.sessions('u')).map((s) => s.sessionId)).toEqual(['dead', 'live']);
    now += 1; // at its expiry
    expect((await p.sessions('u')).map((s) => s.sessionId)).toEqual(['live']);
    now += ttl / 2 - 1; // 1 ms before the live one's refreshed expiry
    expect((await p.sessions('u')).map((s) => s.sessionId)).toEqual(['live']);
    now += 1;
    expect(await p.sessions('u')).toEqual([]);
  });

  it('refresh extends only the sessions listed: an entry of the instance no session of it serves expires at its TTL', async () => {
    let now = 1_000;
    const ttl = 1_000;
    const p = new MemoryPresence({ instanceTtlMs: ttl, now: () => now });
    await p.add('u', entry('kept', 'gw-a', 1));
    // Its session closed, and the remove did not reach the store (a Redis blip).
    await p.add('u', entry('closed', 'gw-a', 2));
    // Beats until the unlisted entry's TTL is up (its last add).
    for (let beat = 0; beat < 4; beat++) {
      now += ttl / 4;
      expect(await p.refresh('gw-a', [['u', ['kept']]])).toEqual([]);
    }
    expect((await p.sessions('u')).map((s) => s.sessionId)).toEqual(['kept']);
    // A listed session whose entry is gone: its user is reported, to be written again.
    expect(await p.refresh('gw-a', [['u', ['kept', 'closed']]])).toEqual(['u']);
  });

  it('lists an announcement until exactly its TTL, with lastSeen the announce time', async () => {
    let now = 5_000;
    const p = new MemoryPresence({ now: () => now });
    await p.announce({ id: 'gw-a', sessions: 1, users: 1, startedAt: 1, version: 'v' }, 300);
    now += 299;
    expect(await p.instances()).toEqual([
      { id: 'gw-a', sessions: 1, users: 1, startedAt: 1, version: 'v', lastSeen: 5_000 },
    ]);
    now += 1;
    expect(await p.instances()).toEqual([]);
  });
});
