import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { AppEvent } from '@livebus/protocol';
import { endSlotRefreshes, fleetUserKeys, userKeys } from '@livebus/publisher/redis';
import {
  type FirestoreEmulatorHandle,
  type RedisClusterHandle,
  sleep,
  startFirestoreEmulator,
  startRedisCluster,
  waitFor,
} from '@livebus/test-support';
import type { Firestore } from 'firebase-admin/firestore';
import { Cluster } from 'ioredis';
import { composePorts } from '../src/compose';
import type { GatewayConfig } from '../src/config';
import type { Logger } from '../src/logger';
import { connectAs, startGateway, type TestClient, type TestGateway } from './helpers';
import { createWhenReachable, testFirestore, testListeners, useEmulator, warmUp } from './listeners-helpers';

// A user's listener lease held through the loss of the Redis Cluster master that
// holds it (three masters, one replica each), with two in-process gateways that both
// serve the user and a writer changing Firestore at a steady pace all the while.
// LIVEBUS_FAILOVER_FULL=1 writes longer and faster.
const FULL = process.env.LIVEBUS_FAILOVER_FULL === '1';
const SIZE = FULL
  ? { writes: 150, everyMs: 40, faultAfter: 50, nodeTimeoutMs: 2_000 }
  : { writes: 40, everyMs: 50, faultAfter: 12, nodeTimeoutMs: 1_000 };
// Longer than the failover takes on a loaded host (node timeout 1 s, then 2-4 s until the
// replica is promoted), as production's 15 s is: with 3 s the lease moved during the failover
// and the old holder's last publish could land after the takeover (see docs/reliability.md).
const LEASE_TTL_MS = 8_000;
// The gateways' detach delay. LF_DETACH_DELAY_MS (read only here) runs the scenarios with a
// longer one (production's default is 5 000 ms), so that A's release of the user's listeners
// after its tab left is a pending detach still when the failover comes:
//   LF_DETACH_DELAY_MS=3000 pnpm exec jest test/listeners-failover.int.test.ts -t 'handover'
const DETACH_DELAY_MS = Number(process.env.LF_DETACH_DELAY_MS ?? 100);
const run = promisify(execFile);

let emulator: FirestoreEmulatorHandle;
let cluster: RedisClusterHandle;
let db: Firestore;
let closeDb: () => Promise<void>;
const gateways: TestGateway[] = [];
/** Each in-process gateway's bus, by instance id. */
const buses = new Map<string, NonNullable<Awaited<ReturnType<typeof composePorts>>['bus']>>();

/** One moment of the fleet, in the order both in-process gateways saw them. */
type Moment =
  | { kind: 'hold' | 'drop'; uid: string; instance: string; token?: number | string; why: string }
  | { kind: 'publish'; uid: string; instance: string; path: string; change: string; cursor: string };
const timeline: Moment[] = [];

async function gateway(instanceId: string): Promise<TestGateway> {
  // The bus is wrapped to see which instance publishes each listener.change.
  const ports = async (config: GatewayConfig, logger: Logger) => {
    const p = await composePorts(config, logger);
    const bus = p.bus;
    if (bus) buses.set(instanceId, bus);
    if (bus) {
      const publish = bus.publish.bind(bus);
      bus.publish = async (userId: string, event: AppEvent, options?: Parameters<typeof publish>[2]) => {
        const stored = await publish(userId, event, options);
        if (event.event === 'listener.change') {
          const data = event.data as { path: string; change: string };
          timeline.push({
            kind: 'publish',
            uid: userId,
            instance: instanceId,
            path: data.path,
            change: data.change,
            cursor: stored.cursor,
          });
        }
        return stored;
      };
    }
    const lease = p.lease;
    if (lease) {
      // Holding starts when the lease is taken (the listeners may publish before the hook).
      const acquire = lease.acquire.bind(lease);
      lease.acquire = async (key, owner, ttlMs) => {
        const got = await acquire(key, owner, ttlMs);
        if (got) timeline.push({ kind: 'hold', uid: key, instance: instanceId, token: got.token, why: 'acquired' });
        return got;
      };
    }
    return p;
  };
  const t = await startGateway(
    {
      instanceId,
      redisUrl: cluster.url,
      redisCluster: true,
      listeners: testListeners,
      firestoreProjectId: emulator.projectId,
      listenerLeaseTtlMs: LEASE_TTL_MS,
      detachDelayMs: DETACH_DELAY_MS,
      logLevel: 'warn',
    },
    ports,
  );
  // Holding ends once the listeners are closed (a publish in flight completes first).
  let why = 'released';
  t.gw.hooks.on('lease.lost', (e) => {
    why = e.reason;
  });
  t.gw.hooks.on('listener.detached', (e) => {
    timeline.push({ kind: 'drop', uid: e.uid, instance: instanceId, why });
    why = 'released';
  });
  gateways.push(t);
  return t;
}

beforeAll(async () => {
  [emulator, cluster] = await Promise.all([
    startFirestoreEmulator('livebus-lease-failover'),
    startRedisCluster({ replicas: 1, nodeTimeoutMs: SIZE.nodeTimeoutMs }),
  ]);
  useEmulator(emulator);
  ({ db, close: closeDb } = testFirestore(emulator.projectId, 'lease-failover-writer'));
  await warmUp(db);
  await gateway('gw-lf-a');
  await gateway('gw-lf-b');
}, 120_000);

afterAll(async () => {
  await Promise.all(gateways.map((g) => g.close()));
  await closeDb?.();
  await Promise.all([emulator?.stop(), cluster?.stop()]);
});

/**
 * A tab of `uid` that resumes from its last cursor whenever the gateway closes it
 * (as a real client does), counting the resumes answered `gap`.
 */
function tab(url: string, uid: string) {
  const changes: Array<{ path: string; change: string; initial?: boolean }> = [];
  let gaps = 0;
  let resumes = 0;
  let cursor: string | undefined;
  let current: TestClient | undefined;
  let stopped = false;
  // Hellos that failed, the last failure, and how each socket closed: for a run that went wrong.
  const failures: string[] = [];
  const closes: string[] = [];
  const open = async (): Promise<void> => {
    for (;;) {
      try {
        const { client, welcome } = await connectAs(url, uid, cursor ? { last_cursor: cursor } : {});
        if (stopped) {
          await client.close();
          return;
        }
        if (cursor) resumes++;
        if ((welcome as { resume?: { status?: string } }).resume?.status === 'gap') gaps++;
        current = client;
        let seen = 0;
        client.ws.on('message', () => {
          for (const e of client.events().slice(seen)) {
            seen++;
            cursor = e.cursor;
            if (e.event === 'listener.change')
              changes.push(e.data as { path: string; change: string; initial?: boolean });
          }
        });
        void client.closed.then(({ code, reason }) => {
          closes.push(`${code} ${reason}`);
          if (!stopped) void sleep(50).then(open);
        });
        return;
      } catch (error) {
        failures.push(String(error));
        if (stopped) return;
        await sleep(100);
      }
    }
  };
  return {
    changes,
    gaps: () => gaps,
    cursor: () => cursor,
    resumes: () => resumes,
    isOpen: () => current?.ws.readyState === 1,
    attempts: () => ({ failed: failures.length, lastFailure: failures.at(-1), closes: closes.slice(-5) }),
    open,
    close: async () => {
      stopped = true;
      await current?.close();
    },
  };
}

/** The replica of the master at `port` (a restarted node may take a moment to show as one). */
function replicaOf(port: number) {
  return waitFor(async () => {
    const topology = await cluster.topology();
    const master = topology.find((n) => n.port === port);
    return topology.find((n) => n.role === 'replica' && n.masterId === master?.id);
  }, `a replica of ${port}`);
}

/**
 * How many times the user's stream (as the cluster holds it now) has each document's
 * listener.change, and the cursors it holds.
 */
async function streamCounts(
  uid: string,
): Promise<{ counts: Map<string, number>; cursors: Set<string>; entries: Map<string, string[]> }> {
  const admin = new Cluster(cluster.nodes);
  admin.on('error', () => {});
  try {
    const counts = new Map<string, number>();
    const cursors = new Set<string>();
    // Per path, each entry as `cursor change[ initial] update_time`: what a failure report shows.
    const entries = new Map<string, string[]>();
    for (const [, fields] of await admin.xrange(userKeys(uid).stream, '-', '+')) {
      const frame = JSON.parse(fields[fields.indexOf('d') + 1] as string) as {
        event: string;
        cursor: string;
        data: { path: string; initial?: boolean; change?: string; update_time?: string };
      };
      cursors.add(frame.cursor);
      if (frame.event !== 'listener.change') continue;
      const { path, change, initial, update_time } = frame.data;
      entries.set(path, [
        ...(entries.get(path) ?? []),
        `${frame.cursor} ${change}${initial ? ' initial' : ''} ${update_time}`,
      ]);
      // A current state sent again as `initial` after a departure is not a change twice (see `twice`).
      const again = frame.data.initial === true && counts.has(frame.data.path);
      if (!again) counts.set(frame.data.path, (counts.get(frame.data.path) ?? 0) + 1);
    }
    return { counts, cursors, entries };
  } finally {
    admin.disconnect();
    endSlotRefreshes(admin);
  }
}

const redisCli = async (port: number, ...args: string[]) =>
  (await run('redis-cli', ['-p', String(port), ...args], { encoding: 'utf8' })).stdout.trim();

/** Holding intervals per instance from the timeline: overlaps are moments both held the user's listeners. */
function overlaps(moments: Moment[]): number {
  const holding = new Set<string>();
  let both = 0;
  for (const m of moments) {
    if (m.kind === 'hold') {
      holding.add(m.instance);
      if (holding.size > 1) both++;
    } else if (m.kind === 'drop') holding.delete(m.instance);
  }
  return both;
}

/** Publishes of listener.change by an instance that did not hold the lease then (as the hooks say). */
function publishedWithoutLease(moments: Moment[]): number {
  const holding = new Set<string>();
  let stray = 0;
  for (const m of moments) {
    if (m.kind === 'hold') holding.add(m.instance);
    else if (m.kind === 'drop') holding.delete(m.instance);
    else if (!holding.has(m.instance)) stray++;
  }
  return stray;
}

/**
 * Writes `SIZE.writes` documents of `uid`, one every `SIZE.everyMs`, calling `fault`
 * after `SIZE.faultAfter` of them, then waits until each tab has each one or was told
 * `gap`, and returns the counts.
 */
async function writeThrough(
  uid: string,
  tabs: Array<ReturnType<typeof tab>>,
  fault: () => Promise<void>,
  from: number,
  settled?: () => Promise<void>,
) {
  const paths: string[] = [];
  let faultDone: Promise<void> | undefined;
  for (let n = 1; n <= SIZE.writes; n++) {
    const path = `users/${uid}/notifications/w${n}`;
    paths.push(path);
    // Retried: the emulator now and then answers a commit with UNKNOWN on a loaded host.
    await createWhenReachable(db, path, { n });
    if (n === SIZE.faultAfter) faultDone = fault();
    await sleep(SIZE.everyMs);
  }
  await faultDone;
  await cluster.waitStable();
  for (const [i, t] of tabs.entries()) {
    await waitFor(
      () => t.gaps() > 0 || paths.every((p) => t.changes.some((c) => c.path === p)),
      `tab ${i}: every write or a gap`,
      30_000,
    );
  }
  await settled?.();
  // After the failover, with every tab resumed: each new write reaches each tab, gap or not.
  const afterPaths: string[] = [];
  for (let n = 1; n <= 5; n++) {
    const path = `users/${uid}/notifications/after${n}`;
    afterPaths.push(path);
    await createWhenReachable(db, path, { n });
  }
  for (const [i, t] of tabs.entries()) {
    await waitFor(
      () => afterPaths.every((p) => t.changes.some((c) => c.path === p)),
      `tab ${i}: the writes after`,
      20_000,
    ).catch(async (error: unknown) => {
      // What the tab had, what was published and what the stream holds: for a run that went wrong.
      const published = timeline.filter((m) => m.uid === uid && m.kind === 'publish' && afterPaths.includes(m.path));
      const { cursors } = await streamCounts(uid).catch(() => ({ cursors: new Set<string>() }));
      // How many connections the user's channel has on its master now (one per gateway serving
      // the user): fewer means a gateway's subscription is gone while its bus believes it live.
      const channel = userKeys(uid).channel;
      const subscribers = await cluster
        .masterOf(channel)
        .then((m) => redisCli(m.port, 'PUBSUB', 'SHARDNUMSUB', channel))
        .catch((error: unknown) => String(error));
      process.stdout.write(
        `lease failover tab ${i}: ${JSON.stringify({
          has: afterPaths.filter((p) => t.changes.some((c) => c.path === p)),
          cursor: t.cursor(),
          resumes: t.resumes(),
          gaps: t.gaps(),
          open: t.isOpen(),
          attempts: t.attempts(),
          published: published.map((m) => `${m.instance}@${(m as { cursor: string }).cursor}`),
          streamTail: [...cursors].slice(-8),
          // Where each gateway's live delivery of the user stands, and its sessions of the user.
          channelSubscribers: subscribers,
          gateways: [...buses].map(([instance, bus], n) => ({
            instance,
            position: bus.position?.(uid),
            stats: gateways[n]?.gw.stats(),
          })),
        })}\n`,
      );
      throw error;
    });
  }
  paths.push(...afterPaths);
  // A moment for a late second delivery, were there one, to show itself.
  await sleep(1_000);
  // From before the tabs opened: who held the lease when each write was published.
  const moments = timeline.slice(from).filter((m) => m.uid === uid);
  const { counts: inStream, cursors, entries } = await streamCounts(uid);
  // Published, acknowledged by the old master, and not on the promoted replica.
  const lostWithMaster = new Set(
    moments.flatMap((m) => (m.kind === 'publish' && !cursors.has(m.cursor) ? [m.path] : [])),
  );
  const perTab = tabs.map((t) => {
    // A re-attach after the user left the fleet (every tab away longer than the detach delay:
    // the failover closes them all at once, and a loaded machine can hold a reconnect past the
    // test's 100 ms) sends the current state again as `initial`, by design (docs/listeners.md):
    // a document handed again that way is not a change handed twice.
    const ours = t.changes.filter(
      (c, i) => paths.includes(c.path) && !(c.initial === true && t.changes.slice(0, i).some((d) => d.path === c.path)),
    );
    const distinct = new Set(ours.map((c) => c.path));
    const twice = [...distinct].filter((p) => ours.filter((c) => c.path === p).length > 1);
    return {
      received: ours.length,
      duplicated: ours.length - distinct.size,
      duplicatedNotLost: twice.filter((p) => !lostWithMaster.has(p)).length,
      missing: paths.filter((p) => !distinct.has(p)).length,
      gaps: t.gaps(),
      resumes: t.resumes(),
    };
  });
  const published = moments.filter((m) => m.kind === 'publish' && paths.includes(m.path));
  const byInstance: Record<string, number> = {};
  for (const m of published) byInstance[m.instance] = (byInstance[m.instance] ?? 0) + 1;
  const twice = new Map<string, string[]>();
  for (const m of published) {
    if (m.kind === 'publish') twice.set(m.path, [...(twice.get(m.path) ?? []), `${m.instance}@${m.cursor}`]);
  }
  return {
    writes: paths.length,
    published: published.length,
    publishedTwice: [...twice.values()].filter((by) => by.length > 1).length,
    lostWithMaster: lostWithMaster.size,
    twiceInStream: paths.filter((p) => (inStream.get(p) ?? 0) > 1).length,
    // What the stream holds of each path in it twice, and who published it when.
    twiceDetail: paths
      .filter((p) => (inStream.get(p) ?? 0) > 1)
      .map((p) => ({
        path: p.split('/').pop(),
        stream: entries.get(p),
        published: twice.get(p),
      })),
    notInStream: paths.filter((p) => !inStream.has(p)).length,
    notInStreamNotLost: paths.filter((p) => !inStream.has(p) && !lostWithMaster.has(p)).length,
    byInstance,
    overlaps: overlaps(moments),
    publishedWithoutLease: publishedWithoutLease(moments),
    leaseMoments: moments.filter((m) => m.kind !== 'publish').map((m) => `${m.instance}:${m.kind}:${m.why}`),
    tabs: perTab,
  };
}

/** Prints what both gateways saw of `uid` (hooks, warnings and errors): for a run that went wrong. */
function diagnose(uid: string): void {
  for (const g of gateways) {
    const hooks = g.hooks.entries.filter((e) => (e as { uid?: string }).uid === uid && e.name !== 'lease.renewed');
    const logs = g.logs.entries.filter((e) => e.level === 'warn' || e.level === 'error');
    const lines = [...hooks, ...logs].map((e) => JSON.stringify(e));
    process.stdout.write(`lease failover diagnosis ${g.url}:\n${lines.join('\n')}\n`);
  }
}

const restartAfter: number[] = [];
afterEach(async () => {
  for (const port of restartAfter.splice(0)) await cluster.restart(port);
  await cluster.waitStable();
}, 60_000);

describe('a listener lease held through a Redis Cluster failover', () => {
  it('SIGKILL of the master holding the lease: each write reaches each tab once (or the tab hears gap), one instance delivers at a time', async () => {
    const uid = 'lease-kill';
    const [a, b] = gateways as [TestGateway, TestGateway];
    const from = timeline.length;
    const tabs = [tab(a.url, uid), tab(b.url, uid)];
    await (tabs[0] as ReturnType<typeof tab>).open();
    await a.hooks.waitFor('lease.acquired', uid, () => true, 15_000);
    await (tabs[1] as ReturnType<typeof tab>).open();
    const master = await cluster.masterOf(fleetUserKeys(uid).lease);
    // The killed node comes back (as a replica) even if an assertion fails: the next test needs replicas.
    restartAfter.push(master.port);
    const figures = await writeThrough(uid, tabs, () => cluster.kill(master.port), from).catch((error: unknown) => {
      diagnose(uid);
      throw error;
    });
    process.stdout.write(`lease failover figures: ${JSON.stringify({ scenario: 'kill', ...figures })}\n`);
    if (figures.leaseMoments.length > 1 || figures.twiceInStream > 0) diagnose(uid);

    expect(figures.overlaps).toBe(0);
    expect(figures.publishedWithoutLease).toBe(0);
    // Each write in the stream once: a publish whose reply was lost with the dying master is
    // retried, and the append recognises a batch it stored already (docs/reliability.md, exactly once).
    expect(figures.twiceInStream).toBe(0);
    // Missing from the stream only what the promoted replica lost and the holder cannot know
    // it must publish again (see docs/reliability.md); every tab heard gap then.
    expect(figures.notInStreamNotLost).toBe(0);
    if (figures.notInStream > 0) for (const t of figures.tabs) expect(t.gaps).toBeGreaterThan(0);
    for (const t of figures.tabs) {
      // Handed twice only what the promoted replica lost (published again by the holder,
      // which cannot know it was), and then the tab was told gap; missing only with a gap too.
      expect(t.duplicatedNotLost).toBe(0);
      if (t.gaps === 0) expect(t.missing).toBe(0);
    }
    expect(a.gw.stats().listeners + b.gw.stats().listeners).toBe(1);
    await Promise.all(tabs.map((t) => t.close()));
    await waitFor(() => a.gw.stats().listeners + b.gw.stats().listeners === 0, 'released everywhere', 10_000);
  }, 120_000);

  it('the promoted replica lost the last lease write (a handover): the stale holder is fenced, one instance delivers at a time', async () => {
    const uid = 'lease-lost-write';
    const [a, b] = gateways as [TestGateway, TestGateway];
    const before = timeline.length;
    const lostTokens: number[] = [];
    const onA = tab(a.url, uid);
    const onB = tab(b.url, uid);
    await onA.open();
    await a.hooks.waitFor('lease.acquired', uid, () => true, 15_000);
    await onB.open();
    const master = await cluster.masterOf(fleetUserKeys(uid).lease);
    const replica = await replicaOf(master.port);
    restartAfter.push(master.port);
    const pid = Number(/process_id:(\d+)/.exec(await redisCli(replica.port, 'info', 'server'))?.[1]);
    const tokenOf = async (port: number) => Number(await redisCli(port, 'get', fleetUserKeys(uid).leaseFence));

    const figures = await writeThrough(
      uid,
      [onB],
      async () => {
        // The replica stops reading and the master drops it: nothing written from now on reaches it.
        process.kill(pid, 'SIGSTOP');
        await redisCli(master.port, 'client', 'kill', 'type', 'replica');
        // The last lease writes: A releases on its tab's departure, B acquires (a new token).
        await onA.close();
        const acquired = await b.hooks.waitFor('lease.acquired', uid, () => true, LEASE_TTL_MS * 3);
        const lostToken = await tokenOf(master.port);
        expect(lostToken).toBe(acquired.token);
        await sleep(SIZE.everyMs * 4);
        await cluster.kill(master.port);
        process.kill(pid, 'SIGCONT');
        lostTokens.push(lostToken);
      },
      before,
      // The tab may have had every write live from the old master before the failover shows
      // (with a long detach delay A published them all): a write made before the tab resumed
      // past the promoted replica's hole is skipped by that resume, which answers `gap` and
      // continues from the head (docs/protocol.md; the app refetches). So "the writes after"
      // start once B holds again and the tab heard gap or stands at the stream's head.
      async () => {
        const bHolds = () =>
          timeline.slice(before).filter((m) => m.kind === 'hold' && m.uid === uid && m.instance === 'gw-lf-b').length;
        await waitFor(() => bHolds() >= 2, 'B holding the lease again after the fence', LEASE_TTL_MS * 3);
        const busB = buses.get('gw-lf-b');
        await waitFor(
          async () => onB.gaps() > 0 || onB.cursor() === (await busB?.head(uid)),
          'the tab on B resumed past the failover',
          20_000,
        );
      },
    ).catch((error: unknown) => {
      diagnose(uid);
      throw error;
    });
    const ofB = timeline.slice(before).filter((m) => m.kind !== 'publish' && m.uid === uid && m.instance === 'gw-lf-b');
    const acquiredAfter = ofB.filter((m) => m.kind === 'hold').map((m) => Number((m as { token: number }).token));
    process.stdout.write(
      `lease failover figures: ${JSON.stringify({ scenario: 'replica-lost-handover', lostTokens, tokens: acquiredAfter, ...figures })}\n`,
    );
    // B held under the token the promoted replica never had: its renewal was refused
    // (or a mark fenced), it dropped the listeners, then took the lease again.
    expect(ofB.slice(0, 3).map((m) => m.kind)).toEqual(['hold', 'drop', 'hold']);
    // Then only departures and returns: the failover closes the tab's session (it resumes), and a
    // loaded machine can hold its reconnect past the test's 100 ms detach delay, which releases
    // the listeners and takes them again on its return, by design (docs/listeners.md).
    const after = ofB.slice(3);
    expect(after.map((m) => m.kind)).toEqual(after.map((_, i) => (i % 2 === 0 ? 'drop' : 'hold')));
    const drops = after.flatMap((m) => (m.kind === 'drop' ? [m.why] : []));
    expect(drops).toEqual(drops.map(() => 'released'));
    expect(acquiredAfter[0]).toBe(lostTokens[0]);
    expect(figures.overlaps).toBe(0);
    expect(figures.publishedWithoutLease).toBe(0);
    // Each write in the stream once: a publish whose reply was lost with the dying master is
    // retried, and the append recognises a batch it stored already (docs/reliability.md, exactly once).
    expect(figures.twiceInStream).toBe(0);
    // Missing from the stream only what the promoted replica lost and the holder cannot know
    // it must publish again (see docs/reliability.md); every tab heard gap then.
    expect(figures.notInStreamNotLost).toBe(0);
    if (figures.notInStream > 0) for (const t of figures.tabs) expect(t.gaps).toBeGreaterThan(0);
    for (const t of figures.tabs) {
      // Handed twice only what the promoted replica lost (published again by the holder,
      // which cannot know it was), and then the tab was told gap; missing only with a gap too.
      expect(t.duplicatedNotLost).toBe(0);
      if (t.gaps === 0) expect(t.missing).toBe(0);
    }
    // B's token from the promoted replica is above the one the dead master issued and lost.
    expect(acquiredAfter.length).toBeGreaterThanOrEqual(2);
    expect(acquiredAfter.at(-1)).toBeGreaterThan(acquiredAfter[0] as number);
    await onB.close();
  }, 120_000);
});
