import { EventEmitter } from 'node:events';
import type { RedisClient } from '@livebus/publisher';
import { RedisEventBus } from './redis-event-bus';

/**
 * A client as the bus uses it, with a subscriber connection whose SSUBSCRIBE and
 * SUNSUBSCRIBE answer as each test says: `never` is a command ioredis never settles
 * (one answered MOVED, or queued on a connection it dropped). `stream`: the user's stored
 * frames (epoch `e`, offsets from 1), which the head and catch-up reads (the Lua scripts) read.
 */
function fakeClient(
  answers: { ssubscribe?: Array<'ok' | 'never'>; sunsubscribe?: Array<'ok' | 'never'> },
  { cluster = false, stream = [] as string[] } = {},
) {
  const sent: string[] = [];
  const reply = (command: string, answer: 'ok' | 'never' | undefined) => {
    sent.push(command);
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
    // EVALSHA sha 2 stream meta ...args: the head read has two args, the read since a cursor six.
    evalsha: async (...args: unknown[]) => {
      if (args.length === 6) return ['e', stream.length];
      const after = Number(args[8]);
      return ['e', stream.length, 'ok', ...stream.slice(after)];
    },
  });
  return { client: client as unknown as RedisClient, sub, sent };
}

/** The stored frame of event `offset` of epoch `e`, as the publisher's Lua function writes it. */
const frame = (offset: number) =>
  JSON.stringify({
    type: 'event',
    cursor: `e:${offset}`,
    ts: 1,
    event: 'session.notice',
    data: { level: 'info', message: String(offset) },
  });

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

describe('RedisEventBus subscriptions that go unanswered', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

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

describe('RedisEventBus after a Cluster master dropped its subscriptions', () => {
  it('holds the live events read after the first lost-subscription error, so the catch-up reads what was published before them', async () => {
    const stream: string[] = [];
    const { client, sub } = fakeClient({}, { cluster: true, stream });
    const bus = new RedisEventBus(client);
    const offsets: number[] = [];
    await bus.listen('u1', (event) => offsets.push(event.offset), undefined);
    const channel = 'lb:{u1}:n';
    stream.push(frame(1));
    sub.emit('smessageBuffer', Buffer.from(channel), Buffer.from(frame(1)));
    // The master dropped the channel (its SUNSUBSCRIBE push, taken by ioredis for the answer
    // to the catch-up's SSUBSCRIBE, which it resolves too early), event 2 was published while
    // the channel was not subscribed, and event 3 arrives live in the same read as the error
    // the subscription's real answer raises.
    stream.push(frame(2), frame(3));
    sub.emit('nodeError', new Error('Command queue state error. Last reply: ssubscribe,lb:{u1}:n,1'));
    sub.emit('smessageBuffer', Buffer.from(channel), Buffer.from(frame(3)));
    await waitUntil(() => offsets.length === 3);
    expect(offsets).toEqual([1, 2, 3]);
    await bus.close();
  });
});

/** Turns of the event loop until `check` holds (at most 100). */
async function waitUntil(check: () => boolean): Promise<void> {
  for (let i = 0; i < 100 && !check(); i++) await new Promise((resolve) => setImmediate(resolve));
  expect(check()).toBe(true);
}
