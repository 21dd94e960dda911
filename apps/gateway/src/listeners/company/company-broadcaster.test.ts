import type { AppEvent } from '@livebus/protocol';
import { PublishError } from '@livebus/publisher';
import { waitFor } from '@livebus/test-support';
import { MemoryEventBus } from '../../fleet/bus/memory-event-bus';
import { createLogger } from '../../logger';
import { CompanyBroadcaster } from './company-broadcaster';
import { type CompanyAppendOptions, type CompanyFanOut, MemoryCompanyFanOut } from './company-fanout';
import { type CompanyFollowers, MemoryCompanyFollowers } from './company-followers';
import { CompanyStats } from './company-stats';

const logger = createLogger({ level: 'error', format: 'json', instanceId: 't' });

const change = (path: string): AppEvent =>
  ({
    event: 'listener.change',
    data: {
      source: 'company',
      listener: 'jobs',
      path,
      change: 'added',
      data: { a: 1 },
      initial: false,
      update_time: '2026-12-02T17:00:00.000000Z',
    },
  }) as AppEvent;

/** A broadcaster of company `acme` on `fanOut` and `followers` (polls every minute); `options` adds to or replaces the rest. */
function broadcaster(
  fanOut: CompanyFanOut,
  followers: CompanyFollowers,
  options: Partial<ConstructorParameters<typeof CompanyBroadcaster>[0]> = {},
): CompanyBroadcaster {
  return new CompanyBroadcaster({
    companyId: 'acme',
    fanOut,
    followers,
    pollMs: 60_000,
    initializedTtlMs: 60_000,
    stats: new CompanyStats(10),
    logger,
    ...options,
  });
}

describe('CompanyBroadcaster', () => {
  it('stopped while a follower poll is in flight: not counted as held, no initial state sent after', async () => {
    const inner = new MemoryCompanyFollowers();
    let release = () => {};
    let polling = () => {};
    const pollSeen = new Promise<void>((r) => {
      polling = r;
    });
    let lists = 0;
    const followers: CompanyFollowers = {
      add: (c, i, u, ttl) => inner.add(c, i, u, ttl),
      refresh: (c, i, u, ttl) => inner.refresh(c, i, u, ttl),
      remove: (c, i, u) => inner.remove(c, i, u),
      initialized: (c, u) => inner.initialized(c, u),
      list: async (c) => {
        if (++lists === 2) {
          // The poke's poll: held until the broadcaster is stopped.
          await new Promise<void>((r) => {
            release = r;
            polling();
          });
        }
        return inner.list(c);
      },
    };
    const memory = new MemoryCompanyFanOut(new MemoryEventBus());
    const sentTo: string[][] = [];
    const fanOut: CompanyFanOut = {
      append: (companyId, uids, events, options) => {
        sentTo.push([...uids]);
        return memory.append(companyId, uids, events, options);
      },
      readJournal: (companyId, cursor) => memory.readJournal(companyId, cursor),
      calls: () => memory.calls(),
    };
    const stats = new CompanyStats(10);
    const b = broadcaster(fanOut, followers, { initializedTtlMs: 1000, stats });
    await b.start(true);
    await b.emit(change('companies/acme/jobs/A')); // delivered state: A
    await inner.add('acme', 'gw-1', ['u1'], 60_000); // u1 joins: would get A as its initial state
    b.poke();
    await pollSeen;
    const stopped = b.stop();
    release();
    await stopped;
    expect(stats.snapshot(0).held).toBe(0);
    expect(sentTo).toEqual([[]]); // only the change, to no follower; no initial state to u1
  });

  it('appends under the lease it holds; an initial state refused as fenced lets the company go, not recorded as sent', async () => {
    const followers = new MemoryCompanyFollowers();
    const told: CompanyAppendOptions[] = [];
    let refuse = false;
    const fanOut: CompanyFanOut = {
      append: async (_companyId, _uids, _events, options) => {
        told.push(options);
        if (refuse) throw new PublishError('fenced', 'the company fan-out was refused: FENCED');
        return undefined;
      },
      readJournal: async () => ({ status: 'gap', events: [], cursor: 'e:0' }),
      calls: () => told.length,
    };
    let fenced = 0;
    const fence = { owner: 'gw-1', token: 7 };
    const b = broadcaster(fanOut, followers, { fence, onFenced: () => fenced++ });
    await b.start(true);
    await b.emit(change('companies/acme/jobs/A'));
    expect(told).toEqual([{ journal: true, fence }]);
    // Another instance holds the lease now: u1's initial state is refused.
    refuse = true;
    await followers.add('acme', 'gw-1', ['u1'], 60_000);
    b.poke();
    await waitFor(() => fenced === 1, 'the holder told it was fenced');
    expect(told).toEqual([
      { journal: true, fence },
      { journal: false, fence },
    ]);
    // Not recorded as initialized: the holder that has the lease sends it.
    expect(await followers.list('acme')).toEqual([{ uid: 'u1', initialized: false }]);
    await b.stop();
  });

  it('sends a large initial state in calls of at most 5 000 appends (events x joiners), every event to every joiner in order', async () => {
    const followers = new MemoryCompanyFollowers();
    const calls: Array<{ uids: string[]; paths: string[] }> = [];
    const fanOut: CompanyFanOut = {
      append: async (_companyId, uids, events, options) => {
        if (!options.journal) {
          calls.push({ uids: [...uids], paths: events.map((e) => (e.data as { path: string }).path) });
        }
        return undefined;
      },
      readJournal: async () => ({ status: 'gap', events: [], cursor: 'e:0' }),
      calls: () => calls.length,
    };
    const b = broadcaster(fanOut, followers);
    await b.start(true);
    const paths = Array.from({ length: 450 }, (_, i) => `companies/acme/jobs/d${String(i).padStart(3, '0')}`);
    for (const path of paths) await b.emit(change(path));
    const joined = Array.from({ length: 2_000 }, (_, i) => `u${i}`);
    await followers.add('acme', 'gw-1', joined, 60_000);
    b.poke();
    await waitFor(
      async () => (await followers.list('acme')).every((f) => f.initialized),
      'the joiners recorded as initialized',
    );
    await b.stop();
    // 450 events: batches of 200, 200 and 50, to 25, 25 and 100 joiners a call.
    expect(calls.map((c) => [c.paths.length, c.uids.length]).filter(([e, u]) => (e ?? 0) * (u ?? 0) > 5_000)).toEqual(
      [],
    );
    expect(calls).toHaveLength(80 + 80 + 20);
    const got = new Map<string, string[]>(joined.map((uid) => [uid, []]));
    for (const c of calls) for (const uid of c.uids) got.get(uid)?.push(...c.paths);
    const expected = paths.join();
    expect(joined.filter((uid) => got.get(uid)?.join() !== expected)).toEqual([]);
  });
});
