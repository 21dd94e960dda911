import { connect } from 'node:net';
import { type AppEvent, parseCursor } from '@livebus/protocol';
import { createPublisher, userKeys } from '@livebus/publisher';
import { type RedisServerHandle, startRedisServer, waitFor } from '@livebus/test-support';
import { Redis } from 'ioredis';
import { WebSocket } from 'ws';
import { composePorts } from '../src/compose';
import type { EventBus, ListenOptions, TargetListener } from '../src/fleet/bus/event-bus';
import { startGateway, TestClient, type TestGateway } from './helpers';

// A hello reserves its user in the hub (SessionHub.reserve): the user's bus subscription
// starts alongside the presence write, before the session exists. What the bus hands on
// meanwhile is dropped by the hub; a fresh session starts from the bus's position (moved
// before an event is handed on) and a resuming one reads what it missed once added. Here,
// against a real Redis and its RedisEventBus, with a publisher publishing all along: no
// event published while a hello is in that window is lost or written twice.

const note = (m: string): AppEvent => ({ event: 'session.notice', data: { level: 'info', message: m } });
const offsetOf = (cursor: string | undefined): number => {
  const at = cursor === undefined ? undefined : parseCursor(cursor);
  if (!at) throw new Error(`not a cursor: ${cursor}`);
  return at.offset;
};
const epochOf = (cursor: string): string | undefined => parseCursor(cursor)?.epoch;
/** The cursors `epoch:from+1` .. `epoch:to`. */
const cursorsAfter = (epoch: string | undefined, from: number, to: number) =>
  Array.from({ length: to - from }, (_, i) => `${epoch}:${from + 1 + i}`);

/** A hello held at its presence write until `open()`; `entered` once it got there. */
interface Gate {
  entered: boolean;
  open(): void;
  opened: Promise<void>;
}

let redis: RedisServerHandle;
let t: TestGateway;
let bus: EventBus;
/** Hellos held at their presence write, by user. */
const gates = new Map<string, Gate>();
/** Bus subscriptions held before they start (SSUBSCRIBE), by user. */
const listenGates = new Map<string, Gate>();
let publisher: ReturnType<typeof createPublisher>;
const clients: TestClient[] = [];

beforeAll(async () => {
  redis = await startRedisServer();
  publisher = createPublisher({ redisUrl: redis.url });
  t = await startGateway(
    { redisUrl: redis.url, logLevel: 'warn', instanceId: 'gw-reserve' },
    async (config, logger) => {
      const ports = await composePorts(config, logger);
      if (!ports.bus || !ports.presence) throw new Error('composePorts gave no bus or presence');
      bus = ports.bus;
      // The presence write of a gated user's hello waits for the test (its reservation is taken before it).
      const presence = ports.presence;
      const add = presence.add.bind(presence);
      presence.add = async (uid, entry, options) => {
        const gate = gates.get(uid);
        if (gate) {
          gate.entered = true;
          await gate.opened;
        }
        return add(uid, entry, options);
      };
      // A gated user's bus subscription starts (SSUBSCRIBE) only once the test lets it.
      const listen = bus.listen?.bind(bus);
      if (!listen) throw new Error('the Redis bus has no listen');
      bus.listen = (async (uid: string, fn: TargetListener<unknown>, target: unknown, options?: ListenOptions) => {
        const gate = listenGates.get(uid);
        if (gate) {
          gate.entered = true;
          await gate.opened;
        }
        return listen(uid, fn, target, options);
      }) as EventBus['listen'];
      return ports;
    },
  );
}, 30_000);

afterEach(async () => {
  for (const g of [...gates.values(), ...listenGates.values()]) g.open();
  gates.clear();
  listenGates.clear();
  for (const c of clients.splice(0)) await c.close();
});

afterAll(async () => {
  await t?.close();
  await publisher?.close();
  await redis?.stop();
});

function gate(uid: string, where = gates): Gate {
  let open = () => {};
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  const g: Gate = { entered: false, open, opened };
  where.set(uid, g);
  return g;
}

/** Publishes to `uids` in turn, one event at a time, until stopped; `last` holds each user's last stored cursor. */
function publishAll(uids: string[]) {
  const last = new Map<string, string>();
  let stopped = false;
  let n = 0;
  const done = (async () => {
    // Bounded: a test that never stops the loop does not fill Redis.
    while (!stopped && n < 20_000) {
      for (const uid of uids) last.set(uid, (await publisher.publish(uid, note(String(n)))).cursor);
      n++;
    }
  })();
  return {
    last,
    /** Stops publishing; resolves with each user's last cursor (the stream's head). */
    async stop(): Promise<Map<string, string>> {
      stopped = true;
      await done;
      return last;
    },
  };
}

/** Sends hello without waiting for the welcome. */
async function hello(uid: string, lastCursor?: string): Promise<TestClient> {
  const client = new TestClient(t.url);
  clients.push(client);
  await client.opened;
  client.send({ type: 'hello', v: 1, user_id: uid, ...(lastCursor === undefined ? {} : { last_cursor: lastCursor }) });
  return client;
}

/** One round trip on the socket: a frame written before the pong has arrived. */
async function roundTrip(client: TestClient): Promise<void> {
  const ts = Date.now() + Math.random();
  client.send({ type: 'ping', ts });
  await client.next('pong', (p) => p.ts === ts);
}

/** Waits until `check` holds or the socket closed (a session that missed events is closed); expects it open. */
async function whileOpen(client: TestClient, check: () => boolean, what: string): Promise<void> {
  await waitFor(() => check() || client.ws.readyState !== WebSocket.OPEN, what, 10_000);
  expect(client.ws.readyState).toBe(WebSocket.OPEN);
}

/**
 * Holds `uid`'s hello at its presence write until its reserved subscription is live and has
 * heard (and the hub dropped, no session being there) at least three events; then lets it go on.
 * Returns the position the subscription started from.
 */
async function holdThroughReservedEvents(uid: string, g: Gate): Promise<string> {
  await waitFor(() => g.entered, 'the hello at its presence write');
  const start = await waitFor(() => bus.position?.(uid), 'the reserved subscription live');
  await waitFor(() => offsetOf(bus.position?.(uid)) >= offsetOf(start) + 3, 'events heard while only reserved', 10_000);
  // Nothing was added meanwhile: the events went to a reservation, not a session.
  expect(t.hooks.of('session.open', uid)).toEqual([]);
  g.open();
  return start;
}

/** Waits for the head, then checks `client` got exactly the events after `from` up to it, in order, and is still open. */
async function expectEverythingAfter(client: TestClient, uid: string, from: string, head: string | undefined) {
  if (head === undefined) throw new Error('nothing published');
  await whileOpen(client, () => client.events().at(-1)?.cursor === head, `${uid}: the stream's head ${head}`);
  await roundTrip(client);
  expect(client.events().map((e) => e.cursor)).toEqual(cursorsAfter(epochOf(from), offsetOf(from), offsetOf(head)));
  expect(client.ws.readyState).toBe(WebSocket.OPEN);
}

it('a fresh session whose subscription heard events while reserved gets every event from its start to the head, once', async () => {
  const uid = `fresh-${Date.now()}`;
  const loop = publishAll([uid]);
  try {
    await waitFor(() => loop.last.get(uid), 'a stream');
    const g = gate(uid);
    const client = await hello(uid);
    const start = await holdThroughReservedEvents(uid, g);
    const welcome = await client.next('welcome', undefined, 10_000);
    expect(welcome.resume.status).toBe('fresh');
    // It starts past what was heard while reserved (those came before it).
    expect(offsetOf(welcome.resume.cursor)).toBeGreaterThanOrEqual(offsetOf(start) + 3);
    await whileOpen(client, () => client.events().length >= 20, 'live events after the welcome');
    const head = (await loop.stop()).get(uid);
    await expectEverythingAfter(client, uid, welcome.resume.cursor, head);
    expect(t.hooks.of('session.close', uid)).toEqual([]);
  } finally {
    await loop.stop();
  }
});

it('a resuming session whose subscription heard events while reserved gets every event after its cursor, once, in order', async () => {
  const uid = `resume-${Date.now()}`;
  const loop = publishAll([uid]);
  try {
    const cursor = await waitFor(() => {
      const c = loop.last.get(uid);
      return c !== undefined && offsetOf(c) >= 5 ? c : undefined;
    }, 'a cursor to resume from');
    const g = gate(uid);
    const client = await hello(uid, cursor);
    await holdThroughReservedEvents(uid, g);
    const welcome = await client.next('welcome', undefined, 10_000);
    expect(welcome.resume.status).toBe('resumed');
    // The replay reaches past everything heard while reserved.
    expect(welcome.resume.replayed).toBeGreaterThanOrEqual(3);
    expect(offsetOf(welcome.resume.cursor)).toBe(offsetOf(cursor) + welcome.resume.replayed);
    await whileOpen(
      client,
      () => client.events().length >= welcome.resume.replayed + 20,
      'live events after the replay',
    );
    const head = (await loop.stop()).get(uid);
    await expectEverythingAfter(client, uid, cursor, head);
    expect(t.hooks.of('session.replay', uid)).toEqual([expect.objectContaining({ gap: false })]);
    expect(t.hooks.of('session.close', uid)).toEqual([]);
  } finally {
    await loop.stop();
  }
});

it('a resuming hello of a user not served here reads its stream once: the read that makes the subscription live is its replay', async () => {
  const uid = `once-${Date.now()}`;
  const cursors: string[] = [];
  for (let i = 0; i < 3; i++) cursors.push((await publisher.publish(uid, note(String(i)))).cursor);
  const monitor = await monitorRedis(redis.url);
  try {
    const client = await hello(uid, cursors[0]);
    const welcome = await client.next('welcome', undefined, 10_000);
    expect(welcome.resume).toEqual({ status: 'resumed', cursor: cursors[2], replayed: 2 });
    await whileOpen(client, () => client.events().length === 2, 'the replay');
    expect(client.events().map((e) => e.cursor)).toEqual(cursors.slice(1));
    const commands = await monitor.upToNow();
    // What clients sent on the user's stream (not what scripts ran): one script read, the
    // subscription's, handed to the welcome; not a head read and then a replay read.
    const stream = `"${userKeys(uid).stream}"`;
    expect(commands.filter((c) => !c.fromScript && c.line.includes(stream)).map((c) => c.command)).toEqual(['evalsha']);
  } finally {
    monitor.close();
  }
});

/**
 * Redis MONITOR on a plain socket: the command lines Redis ran, in order. `upToNow()` sends a
 * PING with a mark through another connection and resolves once the monitor has seen it.
 */
async function monitorRedis(url: string) {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  const lines: string[] = [];
  let buffered = '';
  const seen: Array<() => void> = [];
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    buffered += chunk;
    const parts = buffered.split('\r\n');
    buffered = parts.pop() ?? '';
    lines.push(...parts);
    for (const check of seen) check();
  });
  socket.write('MONITOR\r\n');
  await waitFor(() => lines[0] === '+OK', 'MONITOR on');
  return {
    async upToNow() {
      const mark = `mark-${Date.now()}-${Math.random()}`;
      const pinger = new Redis(url);
      try {
        await pinger.ping(mark);
      } finally {
        pinger.disconnect();
      }
      await waitFor(() => lines.some((l) => l.includes(`"${mark}"`)), 'the monitor up to the mark');
      // '+<time> [<db> <client or lua>] "<command>" "<arg>" ...'
      return lines.slice(1).map((line) => ({
        line,
        fromScript: / \[\d+ lua\] /.test(line),
        command: /\] "([^"]*)"/.exec(line)?.[1]?.toLowerCase(),
      }));
    },
    close: () => socket.destroy(),
  };
}

it('fresh and resuming hellos racing each other (one reservation per user) while events are published: none lost or repeated', async () => {
  const uids = Array.from({ length: 6 }, (_, i) => `race-${Date.now()}-${i}`);
  const loop = publishAll(uids);
  try {
    await waitFor(() => uids.every((uid) => offsetOf(loop.last.get(uid) ?? 'x:0') >= 2), 'every stream');
    // Per user, a fresh and a resuming hello at once: the second finds the first's reservation.
    const sessions = await Promise.all(
      uids.map(async (uid) => {
        const cursor = loop.last.get(uid) as string;
        const [fresh, resuming] = await Promise.all([hello(uid), hello(uid, cursor)]);
        const [fw, rw] = await Promise.all([
          fresh.next('welcome', undefined, 10_000),
          resuming.next('welcome', undefined, 10_000),
        ]);
        expect([fw.resume.status, rw.resume.status]).toEqual(['fresh', 'resumed']);
        return { uid, fresh, from: fw.resume.cursor, resuming, cursor };
      }),
    );
    const clientsOf = sessions.flatMap((s) => [s.fresh, s.resuming]);
    await waitFor(
      () => clientsOf.every((c) => c.events().length >= 10 || c.ws.readyState !== WebSocket.OPEN),
      'live events on every session',
      10_000,
    );
    expect(clientsOf.map((c) => c.ws.readyState)).toEqual(clientsOf.map(() => WebSocket.OPEN));
    const heads = await loop.stop();
    for (const s of sessions) {
      await expectEverythingAfter(s.fresh, s.uid, s.from, heads.get(s.uid));
      await expectEverythingAfter(s.resuming, s.uid, s.cursor, heads.get(s.uid));
      expect(t.hooks.of('session.close', s.uid)).toEqual([]);
    }
  } finally {
    await loop.stop();
  }
});

describe.each([
  ['fresh', false],
  ['resuming', true],
])('a %s session added while its reserved subscription is still starting', (_name, resuming) => {
  it('waits for it, and gets every event after its start once, in order', async () => {
    const uid = `pending-${resuming ? 'resume' : 'fresh'}-${Date.now()}`;
    const loop = publishAll([uid]);
    try {
      const cursor = await waitFor(() => {
        const c = loop.last.get(uid);
        return c !== undefined && offsetOf(c) >= 5 ? c : undefined;
      }, 'a stream');
      const sub = gate(uid, listenGates);
      const client = await hello(uid, resuming ? cursor : undefined);
      // Admitted and added (the presence write is not held) while the subscription has not started.
      await t.hooks.waitFor('session.open', uid, undefined, 10_000);
      expect(sub.entered).toBe(true);
      const atOpen = offsetOf(loop.last.get(uid));
      await waitFor(() => offsetOf(loop.last.get(uid)) >= atOpen + 3, 'events published while it starts');
      expect(client.frames.filter((f) => f.type === 'welcome')).toEqual([]);
      sub.open();
      const welcome = await client.next('welcome', undefined, 10_000);
      expect(welcome.resume.status).toBe(resuming ? 'resumed' : 'fresh');
      await whileOpen(client, () => client.events().length >= welcome.resume.replayed + 20, 'live events');
      const head = (await loop.stop()).get(uid);
      await expectEverythingAfter(client, uid, resuming ? cursor : welcome.resume.cursor, head);
      expect(t.hooks.of('session.close', uid)).toEqual([]);
    } finally {
      await loop.stop();
    }
  });
});
