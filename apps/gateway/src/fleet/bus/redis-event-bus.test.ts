import { EventEmitter } from 'node:events';
import type { RedisClient } from '@livebus/publisher';
import { RedisEventBus } from './redis-event-bus';

/**
 * A client as the bus uses it, with a subscriber connection whose SSUBSCRIBE and
 * SUNSUBSCRIBE answer as each test says: `never` is a command ioredis never settles
 * (one answered MOVED, or queued on a connection it dropped).
 */
function fakeClient(answers: { ssubscribe: Array<'ok' | 'never'>; sunsubscribe?: Array<'ok' | 'never'> }) {
  const sent: string[] = [];
  const reply = (command: string, answer: 'ok' | 'never' | undefined) => {
    sent.push(command);
    return answer === 'never' ? new Promise<number>(() => {}) : Promise.resolve(1);
  };
  const sub = Object.assign(new EventEmitter(), {
    ssubscribe: (channel: string) => reply(`ssubscribe ${channel}`, answers.ssubscribe.shift() ?? 'ok'),
    sunsubscribe: (channel: string) => reply(`sunsubscribe ${channel}`, answers.sunsubscribe?.shift() ?? 'ok'),
    disconnect: () => {},
  });
  const client = Object.assign(new EventEmitter(), {
    status: 'ready',
    options: { host: '127.0.0.1', port: 6379 },
    duplicate: () => sub,
    // The stream head (the Lua read): epoch `e`, no event yet.
    evalsha: async () => ['e', 0],
  });
  return { client: client as unknown as RedisClient, sent };
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
