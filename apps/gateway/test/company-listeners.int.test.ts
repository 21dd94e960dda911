import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { createPublisher } from '@livebus/publisher';
import { userKeys } from '@livebus/publisher/redis';
import {
  type FirestoreEmulatorHandle,
  type RedisServerHandle,
  startFirestoreEmulator,
  startRedisServer,
  waitFor,
} from '@livebus/test-support';
import type { Firestore } from 'firebase-admin/firestore';
import { Redis } from 'ioredis';
import type { Authenticator } from '../src/auth/authenticator';
import { JwtAuthenticator, signJwt } from '../src/auth/jwt-authenticator';
import { composePorts } from '../src/compose';
import type { GatewayConfig } from '../src/config';
import { addMembers, companyChanges, companyListeners, follow } from './company-helpers';
import { connectAs, httpJson, startGateway, TestClient, type TestGateway } from './helpers';
import { startListenersChild, testFirestore, useEmulator, warmUp, write } from './listeners-helpers';

// Company listeners in a fleet: two in-process gateways on one Redis and the Firestore
// emulator; members spread over both follow one company.
let emulator: FirestoreEmulatorHandle;
let redis: RedisServerHandle;
let db: Firestore;
let closeDb: () => Promise<void>;
const gateways: TestGateway[] = [];
const clients: TestClient[] = [];

async function gateway(
  instanceId: string,
  extra: Partial<GatewayConfig> = {},
  auth?: Authenticator,
): Promise<TestGateway> {
  const t = await startGateway(
    {
      ...extra,
      instanceId,
      redisUrl: redis.url,
      listeners: companyListeners,
      firestoreProjectId: emulator.projectId,
      listenerLeaseTtlMs: 3_000,
      unifiedRegistryEnabled: true,
      detachDelayMs: 100,
      logLevel: 'warn',
    },
    async (config, logger) => ({ ...(await composePorts(config, logger)), ...(auth ? { auth } : {}) }),
  );
  t.gw.hooks.on('company.follow', (e) => follows.push({ instance: instanceId, ...e }));
  t.gw.hooks.on('company.attached', (e) =>
    moments.push({
      instance: instanceId,
      what: 'attached',
      company: e.company_id,
      ...(e.from === undefined ? {} : { from: e.from }),
    }),
  );
  t.gw.hooks.on('company.detached', (e) =>
    moments.push({ instance: instanceId, what: 'detached', company: e.company_id }),
  );
  t.gw.hooks.on('company.lease_lost', (e) => leaseLosses.push({ instance: instanceId, ...e }));
  gateways.push(t);
  return t;
}

beforeAll(async () => {
  [emulator, redis] = await Promise.all([startFirestoreEmulator('livebus-company'), startRedisServer()]);
  useEmulator(emulator);
  ({ db, close: closeDb } = testFirestore(emulator.projectId, 'company-writer'));
  await warmUp(db);
  // One after the other: gateways[0] is gw-co-a.
  await gateway('gw-co-a');
  await gateway('gw-co-b');
}, 60_000);

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await Promise.all(gateways.map((g) => g.close()));
  await closeDb?.();
  await Promise.all([emulator?.stop(), redis?.stop()]);
});

/** The company.follow moments of every gateway, in order. */
const follows: Array<{ instance: string; uid: string; company_id: string | null; reason: string }> = [];

/** Company listener attaches and releases, per instance, in order (`from`: taken over from a holder found dead). */
const moments: Array<{ instance: string; what: 'attached' | 'detached'; company: string; from?: string }> = [];
/**
 * Company leases lost (a renewal late past the TTL, 3 s here): on a starved machine the holder
 * gives the company up and takes it again, which the attach counts below allow for, once each.
 */
const leaseLosses: Array<{ instance: string; company_id: string; reason: string }> = [];
/** Companies held in the fleet now, by the attach and release moments. */
const heldNow = (company: string) =>
  moments.filter((m) => m.company === company).reduce((n, m) => n + (m.what === 'attached' ? 1 : -1), 0);

describe('company listeners in a fleet', () => {
  it('50 members over two instances: one listener in the fleet, each change once to each, initial state to each', async () => {
    const [a, b] = gateways as [TestGateway, TestGateway];
    const uids = Array.from({ length: 50 }, (_, i) => `acme-m${i}`);
    await addMembers(db, 'acme', uids);
    await write(db, 'companies/acme/jobs/before', 'set', { title: 'there before anyone followed' });
    const members = await Promise.all(
      uids.map(async (uid, i) => {
        const { client } = await connectAs((i % 2 === 0 ? a : b).url, uid);
        clients.push(client);
        const answer = await follow(client, uid, 'acme');
        if (answer.type !== 'rpc_result') throw new Error(JSON.stringify(answer));
        return client;
      }),
    );
    // Everyone has the company's state: the document that was there, once, as initial.
    for (const m of members) {
      await waitFor(() => companyChanges(m, 'companies/acme/jobs/before')[0], 'initial state', 15_000);
    }
    for (let i = 0; i < 5; i++) await write(db, `companies/acme/jobs/j${i}`, 'set', { n: i });
    await write(db, 'companies/acme/jobs/zz-sentinel', 'set', { last: true });
    for (const m of members)
      await waitFor(() => companyChanges(m, 'companies/acme/jobs/zz-sentinel')[0], 'sentinel', 15_000);
    for (const m of members) {
      const paths = companyChanges(m).map((e) => (e.data as { path: string }).path);
      expect(paths.sort()).toEqual(
        ['before', 'j0', 'j1', 'j2', 'j3', 'j4', 'zz-sentinel'].map((p) => `companies/acme/jobs/${p}`),
      );
      const before = companyChanges(m, 'companies/acme/jobs/before')[0]?.data as { initial?: boolean };
      expect(before.initial).toBe(true);
    }
    // One listener in the fleet, attached once (again after each lease it lost, and only then).
    expect(heldNow('acme')).toBe(1);
    const lost = leaseLosses.filter((l) => l.company_id === 'acme');
    expect({ moments: moments.filter((m) => m.company === 'acme').length, lost }).toEqual({
      moments: 1 + 2 * lost.length,
      lost,
    });
    // What /metrics and /ws-metrics show: one company listener in the fleet, its 50 followers, reads saved.
    const scraped = await Promise.all([a, b].map((g) => httpJson(`${g.http}/metrics`)));
    const sum = (name: string) =>
      scraped.reduce((n, r) => n + Number(new RegExp(`^${name} (\\d+)`, 'm').exec(String(r.body))?.[1] ?? 0), 0);
    expect(sum('livebus_company_listeners')).toBe(1);
    expect(sum('livebus_company_queries_open')).toBe(1);
    expect(sum('livebus_company_following_users')).toBe(50);
    expect(sum('livebus_company_reads_saved_total')).toBeGreaterThan(0);
    const holder = scraped.find((r) => /^livebus_company_listeners 1/m.test(String(r.body)));
    expect(String(holder?.body)).toContain('livebus_company_followers{company="acme"} 50');
    const wsMetrics = await Promise.all([a, b].map((g) => httpJson(`${g.http}/ws-metrics`)));
    const held = wsMetrics.map(
      (r) => (r.body.metrics as { companies: { top_followers: unknown } }).companies.top_followers,
    );
    expect(held).toContainEqual([['acme', 50]]);
  }, 60_000);
});

/** A member's client as seen by the other members: writes a sentinel and waits until `witness` has it. */
async function sentinelOf(company: string, witness: TestClient, id: string): Promise<void> {
  const path = `companies/${company}/jobs/${id}`;
  await write(db, path, 'set', { sentinel: true });
  await waitFor(() => companyChanges(witness, path)[0], `sentinel ${id}`, 15_000);
}

let markers = 0;
/**
 * Publishes a marker to `uid`'s own stream and waits until `client` (a session of `uid`) has it.
 * A change the holder appended to the user's stream before (one script call appends it to every
 * follower's stream, so before the witness could have it) has reached the session by then: the
 * user's stream is ordered, whichever gateway and event-loop turn each session's delivery takes.
 */
async function caughtUp(uid: string, client: TestClient): Promise<void> {
  const message = `marker-${++markers}`;
  const publisher = createPublisher({ redisUrl: redis.url });
  try {
    await publisher.publish(uid, { event: 'session.notice', data: { level: 'info', message } });
  } finally {
    await publisher.close();
  }
  await waitFor(
    () => client.events().find((e) => (e.data as { message?: string }).message === message),
    `${message} at ${uid}`,
    15_000,
  );
}

/**
 * Writes sentinels until one reaches `witness` but not `gone` (the holder has read its
 * followers since `gone` left), then two more, which must not reach `gone` either. `goneUid`:
 * the user of `gone`, whose stream carries the markers that show `gone` has caught up.
 */
async function stopsReaching(gone: TestClient, goneUid: string, company: string, witness: TestClient): Promise<void> {
  let k = 0;
  for (; k < 50; k++) {
    const id = `cut-${k}`;
    await sentinelOf(company, witness, id);
    await caughtUp(goneUid, gone);
    if (companyChanges(gone, `companies/${company}/jobs/${id}`).length === 0) break;
  }
  expect(k).toBeLessThan(50);
  await sentinelOf(company, witness, 'after-cut-1');
  await sentinelOf(company, witness, 'after-cut-2');
  await caughtUp(goneUid, gone);
  const late = companyChanges(gone).filter((e) =>
    new RegExp(`^companies/${company}/jobs/(after-)?cut-`).test((e.data as { path: string }).path),
  );
  expect(late.map((e) => (e.data as { path: string }).path)).toEqual(
    Array.from({ length: k }, (_, i) => `companies/${company}/jobs/cut-${i}`),
  );
}

async function member(g: TestGateway, uid: string, company: string): Promise<TestClient> {
  const { client } = await connectAs(g.url, uid);
  clients.push(client);
  const answer = await follow(client, uid, company);
  if (answer.type !== 'rpc_result') throw new Error(JSON.stringify(answer));
  return client;
}

describe('company listeners without Redis (one instance, the embedded default)', () => {
  it('follows, sends the initial state and each change once', async () => {
    const t = await startGateway(
      {
        instanceId: 'gw-co-mem',
        listeners: companyListeners,
        firestoreProjectId: emulator.projectId,
        unifiedRegistryEnabled: true,
        logLevel: 'warn',
      },
      composePorts,
    );
    gateways.push(t);
    await addMembers(db, 'stark', ['stark-0', 'stark-1']);
    await write(db, 'companies/stark/jobs/suit', 'set', { mark: 1 });
    const c0 = await member(t, 'stark-0', 'stark');
    const c1 = await member(t, 'stark-1', 'stark');
    for (const c of [c0, c1]) await waitFor(() => companyChanges(c, 'companies/stark/jobs/suit')[0], 'initial', 15_000);
    await write(db, 'companies/stark/jobs/suit', 'set', { mark: 2 });
    for (const c of [c0, c1]) {
      await waitFor(() => companyChanges(c, 'companies/stark/jobs/suit')[1], 'the change', 15_000);
      expect(companyChanges(c, 'companies/stark/jobs/suit').map((e) => (e.data as { change: string }).change)).toEqual([
        'added',
        'modified',
      ]);
    }
  }, 30_000);
});

describe('a follower reconnecting within the detach delay', () => {
  it('resumes from its cursor and gets the removal of a document deleted while it was away', async () => {
    const t = await startGateway(
      {
        instanceId: 'gw-co-back',
        listeners: companyListeners,
        firestoreProjectId: emulator.projectId,
        unifiedRegistryEnabled: true,
        detachDelayMs: 60_000,
        logLevel: 'warn',
      },
      composePorts,
    );
    gateways.push(t);
    await addMembers(db, 'umbrella', ['umb-0', 'umb-1']);
    await write(db, 'companies/umbrella/jobs/gone', 'set', { n: 1 });
    const away = await member(t, 'umb-0', 'umbrella');
    const witness = await member(t, 'umb-1', 'umbrella');
    for (const c of [away, witness]) {
      await waitFor(() => companyChanges(c, 'companies/umbrella/jobs/gone')[0], 'initial', 15_000);
    }
    const cursor = away.events().at(-1)?.cursor as string;
    await away.close();
    await write(db, 'companies/umbrella/jobs/gone', 'delete');
    // The holder has sent the removal (the witness, still connected, got it) while umb-0 was away.
    await waitFor(() => companyChanges(witness, 'companies/umbrella/jobs/gone')[1], 'removed', 15_000);
    const { client: back, welcome } = await connectAs(t.url, 'umb-0', { last_cursor: cursor });
    clients.push(back);
    expect(welcome.resume).toMatchObject({ status: 'resumed' });
    await waitFor(() => companyChanges(back, 'companies/umbrella/jobs/gone')[0], 'the removal, replayed', 15_000);
    expect(
      companyChanges(back, 'companies/umbrella/jobs/gone').map((e) => (e.data as { change: string }).change),
    ).toEqual(['removed']);
  }, 40_000);
});

describe('company listeners handed over', () => {
  it('the holder loses its last follower: another instance takes the company over and resumes, nothing twice; a reconnect follows from the registry', async () => {
    const [a, b] = gateways as [TestGateway, TestGateway];
    const uids = ['wonka-0', 'wonka-1', 'wonka-2', 'wonka-3'];
    await addMembers(db, 'wonka', uids);
    await write(db, 'companies/wonka/jobs/old', 'set', { n: 0 });
    const onA = [await member(a, 'wonka-0', 'wonka'), await member(a, 'wonka-1', 'wonka')];
    await waitFor(() => moments.find((m) => m.company === 'wonka'), 'wonka held');
    const first = moments.find((m) => m.company === 'wonka')?.instance;
    expect(first).toBe('gw-co-a');
    const onB = [await member(b, 'wonka-2', 'wonka'), await member(b, 'wonka-3', 'wonka')];
    for (const c of onB) await waitFor(() => companyChanges(c, 'companies/wonka/jobs/old')[0], 'initial on b', 15_000);
    // Every follower on the holder leaves: after the detach delay the lease moves to b.
    await Promise.all(onA.map((c) => c.close()));
    await waitFor(
      () => moments.find((m) => m.company === 'wonka' && m.instance === 'gw-co-b' && m.what === 'attached'),
      'b takes wonka over',
      15_000,
    );
    expect(heldNow('wonka')).toBe(1);
    // wonka-0 comes back on b: it follows again from the registry, without a call.
    const { client: back } = await connectAs(b.url, 'wonka-0');
    clients.push(back);
    await waitFor(
      () => follows.find((f) => f.uid === 'wonka-0' && f.instance === 'gw-co-b' && f.reason === 'member'),
      'wonka-0 follows again',
    );
    await write(db, 'companies/wonka/jobs/new', 'set', { n: 1 });
    for (const c of [...onB, back])
      await waitFor(() => companyChanges(c, 'companies/wonka/jobs/new')[0], 'new', 15_000);
    for (const c of onB) {
      const paths = companyChanges(c).map((e) => (e.data as { path: string }).path);
      expect(paths.sort()).toEqual(['companies/wonka/jobs/new', 'companies/wonka/jobs/old']);
    }
  }, 40_000);
});

describe('changing company', () => {
  it('a user with sessions on both instances moves entirely, without reconnecting, when one of them changes the registry', async () => {
    const [a, b] = gateways as [TestGateway, TestGateway];
    await addMembers(db, 'oscorp', ['mover', 'os-witness']);
    await addMembers(db, 'lexcorp', ['mover', 'lx-witness']);
    const osWitness = await member(a, 'os-witness', 'oscorp');
    const lxWitness = await member(b, 'lx-witness', 'lexcorp');
    const onA = await member(a, 'mover', 'oscorp');
    const { client: onB } = await connectAs(b.url, 'mover');
    clients.push(onB);
    await waitFor(
      () => follows.find((f) => f.uid === 'mover' && f.instance === 'gw-co-b' && f.company_id === 'oscorp'),
      'b follows oscorp',
    );
    await sentinelOf('oscorp', osWitness, 'o1');
    for (const c of [onA, onB]) await waitFor(() => companyChanges(c, 'companies/oscorp/jobs/o1')[0], 'o1');
    // The call lands on a; b hears of it from the registry.updated event on the user's stream.
    expect(await follow(onA, 'mover', 'lexcorp')).toMatchObject({ type: 'rpc_result' });
    await waitFor(
      () => follows.find((f) => f.uid === 'mover' && f.instance === 'gw-co-b' && f.company_id === 'lexcorp'),
      'b moves',
    );
    await stopsReaching(onB, 'mover', 'oscorp', osWitness);
    expect(
      companyChanges(onA).filter((e) => /oscorp\/jobs\/after-cut/.test((e.data as { path: string }).path)),
    ).toEqual([]);
    await sentinelOf('lexcorp', lxWitness, 'l1');
    for (const c of [onA, onB]) await waitFor(() => companyChanges(c, 'companies/lexcorp/jobs/l1')[0], 'l1');
  }, 40_000);
});

describe('company listeners, as an attacker tries them', () => {
  it('a non-member setting current_company_id is refused, says why, and gets nothing', async () => {
    const [a] = gateways as [TestGateway];
    await addMembers(db, 'initech', ['ini-peter']);
    const peter = await member(a, 'ini-peter', 'initech');
    const { client: mallory } = await connectAs(a.url, 'ini-mallory');
    clients.push(mallory);
    const answer = await follow(mallory, 'ini-mallory', 'initech');
    expect(answer).toMatchObject({ type: 'rpc_error', error: { code: 'forbidden' } });
    expect(JSON.stringify(answer)).toContain('not a member of company initech');
    // A backend (service caller) sets it anyway: the follow itself is still refused.
    const viaService = await httpJson(`${a.http}/rpc`, {
      method: 'POST',
      token: 'service:backend',
      body: JSON.stringify({
        method: 'UNIFIED_REGISTRY.update_user_registry',
        args: ['ini-mallory', { companies: { current_company_id: 'initech' } }],
      }),
    });
    expect(viaService.status).toBe(200);
    await waitFor(
      () => follows.find((f) => f.uid === 'ini-mallory' && f.reason === 'not_member'),
      'the follow refused',
    );
    await write(db, 'companies/initech/jobs/secret', 'set', { plan: 'x' });
    await sentinelOf('initech', peter, 'after-secret');
    expect(companyChanges(peter, 'companies/initech/jobs/secret')).toHaveLength(1);
    expect(companyChanges(mallory)).toEqual([]);
  }, 30_000);

  it('company ids that could escape a Firestore path are refused before any read', async () => {
    const [a] = gateways as [TestGateway];
    const { client } = await connectAs(a.url, 'ini-eve');
    clients.push(client);
    for (const id of ['../initech', 'initech/members', '..', '.', '__name__', 'a b', '']) {
      const answer = await follow(client, 'ini-eve', id);
      expect(answer).toMatchObject({ type: 'rpc_error', error: { code: 'invalid_params' } });
      if (answer.type === 'rpc_error' && id !== '') {
        // The id fails the method's own checks (the empty one already fails the schema's).
        expect(answer.error.data).toMatchObject({ issues: [expect.objectContaining({ path: expect.any(String) })] });
      }
    }
    expect(follows.filter((f) => f.uid === 'ini-eve' && f.company_id !== null)).toEqual([]);
  }, 30_000);

  it('losing membership (document deleted) stops the flow at the next token refresh', async () => {
    const [a, b] = gateways as [TestGateway, TestGateway];
    await addMembers(db, 'umbrella', ['umb-alice', 'umb-bob']);
    const alice = await member(a, 'umb-alice', 'umbrella');
    const bob = await member(b, 'umb-bob', 'umbrella');
    await sentinelOf('umbrella', alice, 'one');
    await waitFor(() => companyChanges(bob, 'companies/umbrella/jobs/one')[0], 'bob has it');
    await write(db, 'companies/umbrella/members/umb-bob', 'delete');
    bob.send({ type: 'auth', token: 'umb-bob' }); // AUTH_MODE=none: the token names the user
    await waitFor(() => follows.find((f) => f.uid === 'umb-bob' && f.reason === 'not_member'), 'bob unfollowed');
    // The holder drops bob at its next read of the followers (followers_poll_ms): from then on, nothing.
    await stopsReaching(bob, 'umb-bob', 'umbrella', alice);
    expect(companyChanges(alice, 'companies/umbrella/jobs/cut-0')).toHaveLength(1);
  }, 30_000);

  it('losing the claim (a fresh token without it) stops the flow; a member by claim moves company without reconnecting', async () => {
    const secret = 'a-test-secret-that-is-long-enough-1234';
    const jwt = await gateway(
      'gw-co-jwt',
      { authMode: 'jwt', jwtSecret: secret },
      new JwtAuthenticator({ secret, serviceRoleClaim: 'livebus_service' }),
    );
    const token = (companies: string[]) =>
      signJwt({ sub: 'claim-carol', exp: Math.floor(Date.now() / 1000) + 600, company_ids: companies }, secret);
    await addMembers(db, 'hooli', ['hooli-witness']);
    await addMembers(db, 'piedpiper', ['pp-witness']);
    const hooliWitness = await member(gateways[0] as TestGateway, 'hooli-witness', 'hooli');
    const ppWitness = await member(gateways[1] as TestGateway, 'pp-witness', 'piedpiper');
    const carol = new TestClient(jwt.url);
    clients.push(carol);
    await carol.hello({ token: await token(['hooli', 'piedpiper']) });
    expect(await follow(carol, 'claim-carol', 'hooli')).toMatchObject({ type: 'rpc_result' });
    await sentinelOf('hooli', hooliWitness, 'h1');
    await waitFor(() => companyChanges(carol, 'companies/hooli/jobs/h1')[0], 'carol follows hooli');
    // Moves to piedpiper on the same socket.
    expect(await follow(carol, 'claim-carol', 'piedpiper')).toMatchObject({ type: 'rpc_result' });
    await sentinelOf('piedpiper', ppWitness, 'p1');
    await waitFor(() => companyChanges(carol, 'companies/piedpiper/jobs/p1')[0], 'carol follows piedpiper');
    await stopsReaching(carol, 'claim-carol', 'hooli', hooliWitness);
    // A fresh token without piedpiper: the flow stops.
    carol.send({ type: 'auth', token: await token(['hooli']) });
    await waitFor(() => follows.find((f) => f.uid === 'claim-carol' && f.reason === 'not_member'), 'carol unfollowed');
    await stopsReaching(carol, 'claim-carol', 'piedpiper', ppWitness);
  }, 40_000);
});

/** A child gateway process (dist/main.js) told to hold before storing the mark of `holdPath`. */
async function childGateway(instanceId: string, holdPath: string) {
  const { handle, port } = await startListenersChild({
    instanceId,
    redisUrl: redis.url,
    emulator,
    listeners: { company: companyListeners.company },
    env: {
      UNIFIED_REGISTRY_ENABLED: 'true',
      // Longer than the failover window (LISTENER_FAILOVER_MS, 2 s): the survivors take over when
      // the killed child's liveness proof lapses, well before this lease would expire (the hook
      // says which); shorter, a child starved for a moment before its hold could lose it early.
      LISTENER_LEASE_TTL_MS: '10000',
      DETACH_DELAY_MS: '100',
      LIVEBUS_TEST_HOLD_BEFORE_MARK: holdPath,
    },
    readyTimeoutMs: 20_000,
  });
  const child: ChildProcess = handle.child;
  const held: unknown[] = [];
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
    if (line.startsWith('{"livebus_test":"holding_before_mark"')) held.push(JSON.parse(line));
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  return {
    url: `ws://127.0.0.1:${port}/ws`,
    held,
    kill: async () => {
      child.kill('SIGKILL');
      await exited;
    },
    stop: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}

/** How many times each path of the company's events is in a user's stream (as Redis holds it). */
async function streamCounts(admin: Redis, uid: string): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const [, fields] of await admin.xrange(userKeys(uid).stream, '-', '+')) {
    const frame = JSON.parse(fields[fields.indexOf('d') + 1] as string) as { data: { source?: string; path?: string } };
    if (frame.data.source !== 'company' || !frame.data.path) continue;
    const id = frame.data.path.split('/').pop() as string;
    counts[id] = (counts[id] ?? 0) + 1;
  }
  return counts;
}

describe('takeover after the holder of a company was SIGKILLed', () => {
  it('between publishing a change to every follower and storing its mark: nothing lost, nothing twice', async () => {
    const [a, b] = gateways as [TestGateway, TestGateway];
    const uids = Array.from({ length: 10 }, (_, i) => `gx-${i}`);
    await addMembers(db, 'globex', uids);
    await write(db, 'companies/globex/jobs/kept', 'set', { n: 0 });
    const admin = new Redis(redis.url);
    const dead = await childGateway('gw-co-dead', 'companies/globex/jobs/published');
    try {
      // The child's members first: the child takes the company's lease.
      for (const uid of uids.slice(0, 5)) {
        const { client } = await connectAs(dead.url, uid);
        clients.push(client);
        expect(await follow(client, uid, 'globex')).toMatchObject({ type: 'rpc_result' });
      }
      await waitFor(
        async () => (await admin.get('lb:co:{globex}:l'))?.startsWith('gw-co-dead|'),
        'the child holds globex',
      );
      const survivors = await Promise.all(uids.slice(5).map((uid, i) => member(i % 2 ? b : a, uid, 'globex')));
      for (const s of survivors)
        await waitFor(() => companyChanges(s, 'companies/globex/jobs/kept')[0], 'initial', 15_000);
      await write(db, 'companies/globex/jobs/published', 'set', { n: 1 });
      await waitFor(() => dead.held[0], 'the child holding before the mark', 15_000);
      await dead.kill();
      // A survivor's instance takes the lease over and resumes: from the dead holder, whose
      // liveness proof lapsed (LISTENER_FAILOVER_MS), not once its lease expired.
      const takeover = await waitFor(() => moments.find((m) => m.company === 'globex'), 'the takeover', 15_000);
      expect(takeover).toMatchObject({ what: 'attached', from: 'gw-co-dead' });
      await write(db, 'companies/globex/jobs/after', 'set', { n: 2 });
      await write(db, 'companies/globex/jobs/zz-last', 'set', { n: 3 });
      for (const s of survivors)
        await waitFor(() => companyChanges(s, 'companies/globex/jobs/zz-last')[0], 'last', 15_000);
      const once = { kept: 1, published: 1, after: 1, 'zz-last': 1 };
      for (const s of survivors) {
        const counts: Record<string, number> = {};
        for (const e of companyChanges(s)) {
          const id = (e.data as { path: string }).path.split('/').pop() as string;
          counts[id] = (counts[id] ?? 0) + 1;
        }
        expect(counts).toEqual(once);
      }
      // The dead instance's members are still followers (until their entries expire): their streams too.
      const streams = Object.fromEntries(
        await Promise.all(uids.map(async (uid) => [uid, await streamCounts(admin, uid)])),
      );
      expect(streams).toEqual(Object.fromEntries(uids.map((uid) => [uid, once])));
      expect(moments.filter((m) => m.company === 'globex' && m.what === 'attached')).toHaveLength(1);
    } finally {
      dead.stop();
      admin.disconnect();
    }
  }, 90_000);
});
