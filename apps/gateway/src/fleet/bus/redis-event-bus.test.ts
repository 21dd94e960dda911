import { EventEmitter } from 'node:events';
import type { RedisClient } from '@livebus/publisher';
import type { LogEvent, LogFields } from '../../logger';
import { recordingLogger } from '../../testing/recording-logger';
import { RedisEventBus, type RedisEventBusOptions } from './redis-event-bus';

/**
 * A user's stream as the fake Redis holds it: its epoch and the frames it keeps (offsets from
 * 1), and `top`, the offset of the last event appended when the stream keeps fewer than that
 * (a retention of 0 keeps none): the newest frame's otherwise.
 */
interface FakeStream {
  epoch: string;
  frames: string[];
  top?: number;
}

/**
 * A client as the bus uses it, with a subscriber connection whose SSUBSCRIBE and
 * SUNSUBSCRIBE answer as each test says: `never` is a command ioredis never settles
 * (one answered MOVED, or queued on a connection it dropped). `stream`: the user's
 * stream, which the head and catch-up reads (the Lua scripts) read.
 */
function fakeClient(
  answers: {
    ssubscribe?: Array<'ok' | 'never' | 'moved'>;
    sunsubscribe?: Array<'ok' | 'never'>;
    reads?: Array<'ok' | 'fail'>;
    /** Runs as Redis gets the `n`th read (from 1), before it answers: what changed just before it. */
    beforeRead?: (n: number) => void;
  },
  { cluster = false, stream = { epoch: 'e', frames: [] } as FakeStream } = {},
) {
  const sent: string[] = [];
  let reads = 0;
  const reply = (command: string, answer: 'ok' | 'never' | 'moved' | undefined) => {
    sent.push(command);
    if (answer === 'moved') return Promise.reject(new Error('MOVED 2837 127.0.0.1:7001'));
    return answer === 'never' ? new Promise<number>(() => {}) : Promise.resolve(1);
  };
  const sub = Object.assign(new EventEmitter(), {
    isCluster: cluster,
    ssubscribe: (channel: string) => reply(`ssubscribe ${channel}`, answers.ssubscribe?.shift() ?? 'ok'),
    sunsubscribe: (channel: string) => reply(`sunsubscribe ${channel}`, answers.sunsubscribe?.shift() ?? 'ok'),
    disconnect: () => {},
  });
  const client = Object.assign(new EventEmitter(), {
    isCluster: cluster,
    status: 'ready',
    options: { host: '127.0.0.1', port: 6379 },
    duplicate: () => sub,
    // EVALSHA sha 2 stream meta ...args: the head read has two args, the read since a cursor six
    // (its cursor's epoch and offset are the fourth and fifth, '1' in the sixth reads past holes).
    evalsha: async (...args: unknown[]) => {
      if (args.length !== 6) answers.beforeRead?.(++reads);
      const { epoch, frames } = stream;
      const head = stream.top ?? offsetOf(frames.at(-1));
      if (args.length === 6) return [epoch, head];
      sent.push(`read ${args[7]}:${args[8]}`);
      if (answers.reads?.shift() === 'fail') throw new Error('CLUSTERDOWN The cluster is down');
      const after = Number(args[8]);
      if (args[7] !== epoch || after > head) return [epoch, head, 'gap'];
      const rest = frames.filter((f) => offsetOf(f) > after);
      // As the script: a read since a cursor needs the event right after it (a read past holes does not).
      if (args[9] !== '1' && after < head && offsetOf(rest[0]) !== after + 1) return [epoch, head, 'gap'];
      return [epoch, head, 'ok', ...rest];
    },
  });
  return { client: client as unknown as RedisClient, sub, sent };
}

/** The offset in a stored frame's cursor (0 for none). */
const offsetOf = (stored: string | undefined) => Number(/"cursor":"[^:"]*:(\d+)"/.exec(stored ?? '')?.[1] ?? 0);

/** The stored frame of event `offset` of `epoch`, as the publisher's Lua function writes it. */
const frame = (offset: number, epoch = 'e') =>
  JSON.stringify({
    type: 'event',
    cursor: `${epoch}:${offset}`,
    ts: 1,
    event: 'session.notice',
    data: { level: 'info', message: String(offset) },
  });

/** Appends event `offset` to a stream that keeps none (a retention of 0) and sends it over the channel. */
function publishUnkept(sub: EventEmitter, stream: FakeStream, offset: number): void {
  stream.top = offset;
  sub.emit('smessageBuffer', Buffer.from('lb:{u1}:n'), Buffer.from(frame(offset, stream.epoch)));
}

/** Stores the frame in the fake stream and sends it over the user's channel, as the append function does. */
function publish(sub: EventEmitter, stream: FakeStream, offset: number): void {
  const f = frame(offset, stream.epoch);
  stream.frames.push(f);
  if (stream.top !== undefined) stream.top = offset;
  sub.emit('smessageBuffer', Buffer.from('lb:{u1}:n'), Buffer.from(f));
}

/** What `promise` settles to, once checked that it was still pending 1 ms before `ms` of the fake clock and settled at `ms`. */
async function settlesAfter<T>(promise: Promise<T>, ms: number): Promise<T> {
  let settled = false;
  const tracked = promise.finally(() => {
    settled = true;
  });
  await jest.advanceTimersByTimeAsync(ms - 1);
  expect(settled).toBe(false);
  await jest.advanceTimersByTimeAsync(1);
  expect(settled).toBe(true);
  return tracked;
}

describe('RedisEventBus options', () => {
  it.each([0, -1, 1.5, Number.NaN, 2 ** 31])('refuses stepTimeoutMs %p, naming it', (stepTimeoutMs) => {
    const { client } = fakeClient({});
    expect(() => new RedisEventBus(client, { stepTimeoutMs })).toThrow(
      /^RedisEventBus: stepTimeoutMs must be a whole number >= 1 and <= 2147483647, got /,
    );
  });
});

describe('RedisEventBus subscriptions that go unanswered', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('unsubscribes a user whose listen failed unanswered: the tries may still reach Redis', async () => {
    const { client, sent } = fakeClient({ ssubscribe: ['never', 'never', 'never'] });
    const bus = new RedisEventBus(client);
    const listener = () => {};
    const failed = expect(bus.listen('u1', listener, undefined)).rejects.toThrow('no answer');
    await jest.advanceTimersByTimeAsync(1_000);
    const left = bus.unlisten('u1', listener, undefined);
    await jest.advanceTimersByTimeAsync(15_000);
    await Promise.all([failed, left]);
    expect(sent.at(-1)).toBe('sunsubscribe lb:{u1}:n');
    await bus.close();
  });

  it('sends a listen’s SSUBSCRIBE again when the first goes unanswered, and the listen completes', async () => {
    const { client, sent } = fakeClient({ ssubscribe: ['never', 'ok'] });
    const bus = new RedisEventBus(client);
    await settlesAfter(
      bus.listen('u1', () => {}, undefined),
      5_000,
    );
    expect(sent).toEqual(['ssubscribe lb:{u1}:n', 'ssubscribe lb:{u1}:n']);
    expect(bus.position('u1')).toBe('e:0');
    await bus.close();
  });

  it('sends a listen’s SSUBSCRIBE again when a node answers MOVED (the slot moved), without spending a try', async () => {
    const { client, sent } = fakeClient({ ssubscribe: ['moved', 'never', 'never', 'moved', 'ok'] });
    const bus = new RedisEventBus(client);
    const listened = bus.listen('u1', () => {}, undefined);
    await jest.advanceTimersByTimeAsync(11_000);
    await listened;
    expect(sent.filter((c) => c.startsWith('ssubscribe'))).toHaveLength(5);
    expect(bus.position('u1')).toBe('e:0');
    await bus.close();
  });

  it('fails the listen after three unanswered tries (the hello fails; its client reconnects), and serves the user anew on the next', async () => {
    const { client, sent } = fakeClient({ ssubscribe: ['never', 'never', 'never', 'ok'] });
    const bus = new RedisEventBus(client);
    const listen = bus.listen('u1', () => {}, undefined);
    const failed = expect(listen).rejects.toThrow('no answer within 5000 ms');
    await jest.advanceTimersByTimeAsync(15_000);
    await failed;
    expect(bus.stats().streams).toBe(0);
    await bus.listen('u1', () => {}, undefined);
    expect(bus.stats().streams).toBe(1);
    expect(sent.filter((c) => c.startsWith('ssubscribe'))).toHaveLength(4);
    await bus.close();
  });

  it('does not hold a new listen of the user behind an SUNSUBSCRIBE that goes unanswered', async () => {
    const { client, sent } = fakeClient({ ssubscribe: ['ok', 'ok'], sunsubscribe: ['never'] });
    const bus = new RedisEventBus(client);
    const listener = () => {};
    await bus.listen('u1', listener, undefined);
    const left = bus.unlisten('u1', listener, undefined);
    await settlesAfter(
      bus.listen('u1', () => {}, undefined),
      5_000,
    );
    await left;
    expect(sent).toEqual(['ssubscribe lb:{u1}:n', 'sunsubscribe lb:{u1}:n', 'ssubscribe lb:{u1}:n']);
    await bus.close();
  });
});

describe('RedisEventBus on a standalone Redis: a user left while the subscriber was away', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('sends the SUNSUBSCRIBE that failed again once the subscriber is ready (ioredis subscribed the channel again)', async () => {
    const { bus, sub, sent } = await leftWhileAway();
    sub.emit('ready');
    await jest.advanceTimersByTimeAsync(0);
    expect(sent).toEqual(['ssubscribe lb:{u1}:n', 'sunsubscribe lb:{u1}:n', 'sunsubscribe lb:{u1}:n']);
    // Through: not sent again on the next reconnect.
    sub.emit('ready');
    await jest.advanceTimersByTimeAsync(0);
    expect(sent).toHaveLength(3);
    await bus.close();
  });

  it('sends nothing more for a user served again before the subscriber is ready', async () => {
    const { bus, sub, sent, listener } = await leftWhileAway();
    await bus.listen('u1', listener, undefined);
    sub.emit('ready');
    await jest.advanceTimersByTimeAsync(0);
    expect(sent.filter((c) => c.startsWith('sunsubscribe'))).toEqual(['sunsubscribe lb:{u1}:n']);
    await bus.close();
  });
});

/** A standalone bus whose user `u1` left while its SUNSUBSCRIBE went unanswered (the subscriber away). */
async function leftWhileAway() {
  const { client, sub, sent } = fakeClient({ sunsubscribe: ['never'] });
  const bus = new RedisEventBus(client);
  const listener = () => {};
  await bus.listen('u1', listener, undefined);
  sub.emit('ready');
  await settlesAfter(bus.unlisten('u1', listener, undefined), 5_000);
  return { bus, sub, sent, listener };
}

/**
 * A bus on a fake cluster client serving user `u1`, whose listener recorded every event
 * handed on (`cursors`, `offsets`) and every stream reported lost (`lost`), after event 1
 * of epoch `e` came live.
 */
async function servedUser(answers: Parameters<typeof fakeClient>[0] = {}, options: RedisEventBusOptions = {}) {
  const stream: FakeStream = { epoch: 'e', frames: [] };
  const { client, sub, sent } = fakeClient(answers, { cluster: true, stream });
  const bus = new RedisEventBus(client, options);
  const cursors: string[] = [];
  const lost: string[] = [];
  bus.onStreamLost((userId, epoch) => lost.push(`${userId}@${epoch}`));
  await bus.listen('u1', (event) => cursors.push(event.cursor), undefined);
  publish(sub, stream, 1);
  return { stream, sub, sent, bus, cursors, lost, offsets: () => cursors.map((c) => Number(c.split(':')[1])) };
}

describe('RedisEventBus: a live event that does not follow the position', () => {
  it('subscribes again when the subscription was reported lost while a hole was read, and the read failed once', async () => {
    jest.useFakeTimers();
    const { stream, sub, sent, bus, offsets } = await servedUser({ reads: ['fail'] });
    stream.frames.push(frame(2));
    publish(sub, stream, 3);
    sub.emit('nodeError', new Error('Command queue state error. Last reply: sunsubscribe,lb:{u1}:n,0'));
    await jest.advanceTimersByTimeAsync(1_000);
    expect(offsets()).toEqual([1, 2, 3]);
    // The read that failed was not the last word on the subscription: it was confirmed before the next.
    expect(sent.at(-2)).toBe('ssubscribe lb:{u1}:n');
    expect(sent.at(-1)).toBe('read e:1');
    await bus.close();
    jest.useRealTimers();
  });

  it('a read that keeps failing while the channel delivers: holds a bounded number of live events, then reads the rest', async () => {
    jest.useFakeTimers();
    const { stream, sub, sent, bus, offsets } = await servedUser({ reads: ['fail', 'fail', 'fail'] });
    // Event 2 never came live: its catch-up read fails three times while 2 598 more arrive,
    // and the stream keeps the newest 1 000 (the default retention, as this bus's).
    stream.frames.push(frame(2));
    for (let offset = 3; offset <= 2_600; offset++) {
      publish(sub, stream, offset);
      stream.frames = stream.frames.slice(-1_000);
    }
    await jest.advanceTimersByTimeAsync(2_000);
    // As without a bound: the events the stream no longer keeps are skipped (a session sees the
    // jump and hears `gap`), the rest handed on in order, once.
    expect(offsets()).toEqual([1, ...Array.from({ length: 1_000 }, (_, i) => 1_601 + i)]);
    // Held past twice the bound (1 000, the retention's count): the oldest 1 000 were let go.
    expect(bus.stats().heldDropped).toBe(1_000);
    // Three failed reads, then (after subscribing again) the read that found the hole and the read
    // past it: the drop came while reads failed, so the next try was already a read made after it.
    expect(sent.filter((c) => c === 'read e:1')).toHaveLength(5);
    expect(sent.slice(-3)).toEqual(['ssubscribe lb:{u1}:n', 'read e:1', 'read e:1']);
    await bus.close();
    jest.useRealTimers();
  });

  it('never moves the position past what the stream has: a hand-made SPUBLISH far ahead costs two reads and stops nothing', async () => {
    const { stream, sub, sent, bus, offsets } = await servedUser();
    sub.emit('smessageBuffer', Buffer.from('lb:{u1}:n'), Buffer.from(frame(999_999)));
    sub.emit('smessageBuffer', Buffer.from('lb:{u1}:n'), Buffer.from(frame(1, 'x')));
    await waitUntil(() => sent.length === 3);
    publish(sub, stream, 2);
    publish(sub, stream, 3);
    await waitUntil(() => offsets().length === 3);
    expect(offsets()).toEqual([1, 2, 3]);
    expect(bus.position('u1')).toBe('e:3');
    expect(sent).toEqual(['ssubscribe lb:{u1}:n', 'read e:1', 'read e:1']);
    await bus.close();
  });

  it('a stream made anew while a hole was being read: the new epoch from its start, nothing of the old after it', async () => {
    const { stream, sub, bus, cursors, lost } = await servedUser();
    stream.frames.push(frame(2));
    publish(sub, stream, 3);
    stream.epoch = 'f';
    stream.frames = [frame(1, 'f')];
    publish(sub, stream, 2);
    await waitUntil(() => cursors.length === 3);
    expect(cursors).toEqual(['e:1', 'f:1', 'f:2']);
    expect(lost).toEqual(['u1@e']);
    expect(bus.position('u1')).toBe('f:2');
    await bus.close();
  });

  it('after a lost-subscription error: holds the live events read after it, so the catch-up reads what was published before them', async () => {
    const { stream, sub, bus, offsets } = await servedUser();
    // The master dropped the channel (its SUNSUBSCRIBE push, taken by ioredis for the answer
    // to the catch-up's SSUBSCRIBE, which it resolves too early), event 2 was published while
    // the channel was not subscribed, and event 3 arrives live in the same read as the error
    // the subscription's real answer raises.
    stream.frames.push(frame(2));
    sub.emit('nodeError', new Error('Command queue state error. Last reply: ssubscribe,lb:{u1}:n,1'));
    publish(sub, stream, 3);
    await waitUntil(() => offsets().length === 3);
    expect(offsets()).toEqual([1, 2, 3]);
    // One catch-up, started by the error: event 3 waited in its hold, and started no read of its own.
    expect(bus.stats().catchUps).toEqual({ subscription: 1, hole: 0 });
    await bus.close();
  });

  it('past a hole: reads the stream first and hands on what it holds, in order, without subscribing again', async () => {
    const { stream, sub, sent, bus, offsets } = await servedUser();
    // Events 2 and 3 never came over the channel.
    stream.frames.push(frame(2), frame(3));
    publish(sub, stream, 4);
    publish(sub, stream, 5);
    await waitUntil(() => offsets().length === 5);
    expect(offsets()).toEqual([1, 2, 3, 4, 5]);
    expect(sent).toEqual(['ssubscribe lb:{u1}:n', 'read e:1']);
    expect(bus.stats().catchUps).toEqual({ subscription: 0, hole: 1 });
    await bus.close();
  });

  it('past a hole the stream has too (the offset skip at a failover): hands on every event it holds after the position', async () => {
    const { stream, sub, bus, offsets } = await servedUser();
    // A planned failover: the new master's first append skips ahead; 1 000 001 never came live.
    stream.frames.push(frame(1_000_001));
    publish(sub, stream, 1_000_002);
    await waitUntil(() => offsets().length === 3);
    expect(offsets()).toEqual([1, 1_000_001, 1_000_002]);
    await bus.close();
  });

  it('of a stream that keeps no events (retention 0): hands on the live ones from the first its head vouches for, after two reads', async () => {
    const { stream, sub, sent, bus, offsets } = await servedUser();
    stream.frames = [];
    // Event 2 never came over the channel, and the stream keeps none of them.
    stream.top = 2;
    publishUnkept(sub, stream, 3);
    publishUnkept(sub, stream, 4);
    await waitUntil(() => offsets().length === 3);
    publishUnkept(sub, stream, 5);
    expect(offsets()).toEqual([1, 3, 4, 5]);
    expect(sent).toEqual(['ssubscribe lb:{u1}:n', 'read e:1', 'read e:1']);
    expect(bus.stats().catchUps).toEqual({ subscription: 0, hole: 1 });
    await bus.close();
  });

  it('of a stream that keeps no events, after a failover (the offset skip): goes on delivering past the skip', async () => {
    const { stream, sub, bus, offsets } = await servedUser();
    stream.frames = [];
    publishUnkept(sub, stream, 1_000_002);
    publishUnkept(sub, stream, 1_000_003);
    await waitUntil(() => offsets().length === 3);
    expect(offsets()).toEqual([1, 1_000_002, 1_000_003]);
    await bus.close();
  });

  it('of a stream made anew that keeps no events: reports the old epoch lost, then hands on the new epoch', async () => {
    const { stream, sub, bus, cursors, lost } = await servedUser();
    stream.epoch = 'f';
    stream.frames = [];
    publishUnkept(sub, stream, 1);
    publishUnkept(sub, stream, 2);
    await waitUntil(() => cursors.length === 3);
    expect(cursors).toEqual(['e:1', 'f:1', 'f:2']);
    expect(lost).toEqual(['u1@e']);
    await bus.close();
  });

  it('of a stream made anew between the two reads of a catch-up: reports the old epoch lost before its events', async () => {
    const seen: string[] = [];
    const stream: FakeStream = { epoch: 'e', frames: [] };
    const { client, sub } = fakeClient(
      {
        // Made anew as the catch-up's second read (what the stream keeps past the hole) reaches Redis.
        beforeRead: (n) => {
          if (n !== 2) return;
          stream.epoch = 'f';
          stream.frames = [];
          publish(sub, stream, 1);
          publish(sub, stream, 2);
        },
      },
      { cluster: true, stream },
    );
    const bus = new RedisEventBus(client);
    bus.onStreamLost((userId, epoch) => seen.push(`lost ${userId}@${epoch}`));
    await bus.listen('u1', (event) => seen.push(event.cursor), undefined);
    publish(sub, stream, 1);
    // Event 2 trimmed: the stream keeps 3 only, and a lost subscription sends the bus reading.
    stream.frames = [frame(3)];
    sub.emit('nodeError', new Error('Command queue state error. Last reply: sunsubscribe,lb:{u1}:n,0'));
    await waitUntil(() => seen.length === 4);
    expect(seen).toEqual(['e:1', 'lost u1@e', 'f:1', 'f:2']);
    await bus.close();
  });

  it('of a stream made anew whose first events are trimmed already: hands on what it keeps, from the oldest', async () => {
    const { stream, sub, bus, cursors, lost } = await servedUser();
    stream.epoch = 'f';
    stream.frames = [frame(4, 'f')];
    publish(sub, stream, 5);
    await waitUntil(() => cursors.length === 3);
    expect(cursors).toEqual(['e:1', 'f:4', 'f:5']);
    expect(lost).toEqual(['u1@e']);
    await bus.close();
  });

  it('of a stream made anew that has no event yet: once the loss is told, the position is its start, and the next event tells nothing more', async () => {
    const { stream, sub, bus, cursors, lost } = await servedUser();
    // Redis restarted empty: the catch-up after the lost subscription makes the new epoch.
    stream.epoch = 'f';
    stream.frames = [];
    sub.emit('nodeError', new Error('Command queue state error. Last reply: sunsubscribe,lb:{u1}:n,0'));
    await waitUntil(() => lost.length === 1);
    // A session opened now starts where the new epoch stands, not in the one reported lost.
    await waitUntil(() => bus.position('u1') === 'f:0');
    publish(sub, stream, 1);
    await waitUntil(() => cursors.length === 2);
    expect(cursors).toEqual(['e:1', 'f:1']);
    expect(lost).toEqual(['u1@e']);
    await bus.close();
  });

  it('of a stream made anew: reports the old epoch lost, then hands on the new epoch from its start', async () => {
    const { stream, sub, bus, cursors, lost } = await servedUser();
    // A promoted replica without the user's keys: the next append makes the stream anew.
    stream.epoch = 'f';
    stream.frames = [];
    stream.frames.push(frame(1, 'f'));
    publish(sub, stream, 2);
    await waitUntil(() => cursors.length === 3);
    expect(cursors).toEqual(['e:1', 'f:1', 'f:2']);
    expect(lost).toEqual(['u1@e']);
    await bus.close();
  });
});

describe('RedisEventBus: a catch-up whose read keeps failing', () => {
  beforeEach(() => jest.useFakeTimers({ doNotFake: ['setImmediate', 'queueMicrotask', 'nextTick'] }));
  afterEach(() => jest.useRealTimers());

  it('warns once, naming the user, however long it lasts; delivers and says so once the read answers again', async () => {
    const { logger, lines, events } = recordingLogger();
    // Fails until emptied: a damaged key (WRONGTYPE), or a shard that answers pub/sub and not reads.
    const reads: Array<'ok' | 'fail'> = Array(1_000).fill('fail');
    const { stream, sub, bus, offsets } = await servedUser({ reads }, { logger });
    // Event 2 never came live: the catch-up for the hole event 3 shows holds event 3 and 4.
    stream.frames.push(frame(2));
    publish(sub, stream, 3);
    publish(sub, stream, 4);
    await jest.advanceTimersByTimeAsync(9_000);
    // Failing, not yet for long: nothing said, nothing stalled, the failures counted.
    expect(events('bus_catch_up_stalled')).toEqual([]);
    expect(bus.stats().catchUpsStalled).toBe(0);
    expect(bus.stats().catchUpFailures).toBeGreaterThanOrEqual(3);
    // A minute of retries, every 2 s: still one line.
    await jest.advanceTimersByTimeAsync(60_000);
    expect(offsets()).toEqual([1]);
    expect(events('bus_catch_up_stalled')).toEqual([
      [
        'warn',
        'bus_catch_up_stalled',
        {
          uid: 'u1',
          attempts: expect.any(Number),
          held_ms: expect.any(Number),
          held_events: 2,
          error: 'CLUSTERDOWN The cluster is down',
        },
      ],
    ]);
    const [, , stalled] = events('bus_catch_up_stalled')[0] as [string, LogEvent, LogFields];
    expect(stalled.attempts).toBeGreaterThanOrEqual(3);
    expect(bus.stats().catchUpsStalled).toBe(1);
    // The key is fixed: the next try reads, and the held events follow in order.
    reads.length = 0;
    await jest.advanceTimersByTimeAsync(2_000);
    expect(offsets()).toEqual([1, 2, 3, 4]);
    expect(events('bus_catch_up_recovered')).toEqual([
      ['info', 'bus_catch_up_recovered', { uid: 'u1', attempts: expect.any(Number), held_ms: expect.any(Number) }],
    ]);
    expect(bus.stats().catchUpsStalled).toBe(0);
    // Nothing else was logged: no line per retry.
    expect(lines).toHaveLength(2);
    await bus.close();
  });

  it('warns nothing for a read that fails a few times and then answers (a Redis restart or failover)', async () => {
    const { logger, lines } = recordingLogger();
    const { stream, sub, bus, offsets } = await servedUser({ reads: ['fail', 'fail', 'fail', 'fail'] }, { logger });
    stream.frames.push(frame(2));
    publish(sub, stream, 3);
    await jest.advanceTimersByTimeAsync(5_000);
    expect(offsets()).toEqual([1, 2, 3]);
    expect(bus.stats()).toMatchObject({ catchUpFailures: 4, catchUpsStalled: 0 });
    expect(lines).toEqual([]);
    await bus.close();
  });

  it('counts a stall from the last read that answered: failures before it do not count towards the next', async () => {
    const { logger, events } = recordingLogger();
    // Eight failures (about 9 s of retries), a read that answers, then failures for good.
    const reads: Array<'ok' | 'fail'> = [...Array(8).fill('fail'), 'ok', ...Array(1_000).fill('fail')];
    const lostSubscription = new Error('Command queue state error. Last reply: sunsubscribe,lb:{u1}:n,0');
    // The subscription is reported lost while the ninth read is out: the catch-up reads once more after it.
    const beforeRead = (n: number) => {
      if (n === 9) sub.emit('nodeError', lostSubscription);
    };
    const { stream, sub, bus, offsets } = await servedUser({ reads, beforeRead }, { logger });
    stream.frames.push(frame(2));
    publish(sub, stream, 3);
    await jest.advanceTimersByTimeAsync(10_000);
    expect(offsets()).toEqual([1, 2, 3]);
    expect(bus.stats().catchUpFailures).toBeGreaterThanOrEqual(10);
    // Over 10 s since the catch-up began, and failing again: not 10 s since the read that answered.
    await jest.advanceTimersByTimeAsync(8_000);
    expect(events('bus_catch_up_stalled')).toEqual([]);
    await jest.advanceTimersByTimeAsync(4_000);
    expect(events('bus_catch_up_stalled')).toHaveLength(1);
    await bus.close();
  });

  it('says the stall ended when the user leaves while it lasts, and stops trying', async () => {
    const { logger, events } = recordingLogger();
    const reads: Array<'ok' | 'fail'> = Array(1_000).fill('fail');
    const stream: FakeStream = { epoch: 'e', frames: [] };
    const { client, sub, sent } = fakeClient({ reads }, { cluster: true, stream });
    const bus = new RedisEventBus(client, { logger });
    const listener = () => {};
    await bus.listen('u1', listener, undefined);
    publish(sub, stream, 1);
    stream.frames.push(frame(2));
    publish(sub, stream, 3);
    await jest.advanceTimersByTimeAsync(15_000);
    expect(events('bus_catch_up_stalled')).toHaveLength(1);
    await bus.unlisten('u1', listener, undefined);
    await jest.advanceTimersByTimeAsync(2_000);
    expect(events('bus_catch_up_recovered')).toEqual([
      [
        'info',
        'bus_catch_up_recovered',
        { uid: 'u1', attempts: expect.any(Number), held_ms: expect.any(Number), left: true },
      ],
    ]);
    expect(bus.stats().catchUpsStalled).toBe(0);
    const tries = sent.length;
    await jest.advanceTimersByTimeAsync(10_000);
    expect(sent).toHaveLength(tries);
    await bus.close();
  });
});

describe('RedisEventBus: a listener that throws', () => {
  it('costs the user’s other listeners nothing, and is logged as an error with the user and the event, once per 10 s with the count of those between', async () => {
    const { logger, events } = recordingLogger();
    const stream: FakeStream = { epoch: 'e', frames: [] };
    const { client, sub } = fakeClient({}, { cluster: true, stream });
    let now = 0;
    const bus = new RedisEventBus(client, { logger, clock: () => now });
    const got: string[] = [];
    await bus.listen(
      'u1',
      () => {
        throw new Error('socket gone');
      },
      undefined,
    );
    await bus.listen('u1', (event) => got.push(event.cursor), undefined);
    publish(sub, stream, 1);
    publish(sub, stream, 2);
    publish(sub, stream, 3);
    now += 10_000;
    publish(sub, stream, 4);
    expect(got).toEqual(['e:1', 'e:2', 'e:3', 'e:4']);
    expect(events('bus_listener_error').map(([level, , f]) => [level, f.uid, f.cursor, f.suppressed])).toEqual([
      ['error', 'u1', 'e:1', 0],
      ['error', 'u1', 'e:4', 2],
    ]);
    expect(String(events('bus_listener_error')[0]?.[2].error)).toMatch(/^Error: socket gone/);
    // Every one counted, also those the lines only summed up (and one after the last line).
    publish(sub, stream, 5);
    expect(bus.stats().listenerErrors).toBe(5);
    await bus.close();
  });
});

/** Turns of the event loop until `check` holds (at most 100). */
async function waitUntil(check: () => boolean): Promise<void> {
  for (let i = 0; i < 100 && !check(); i++) await new Promise((resolve) => setImmediate(resolve));
  expect(check()).toBe(true);
}
