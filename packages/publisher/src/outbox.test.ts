import { EventEmitter } from 'node:events';
import type { AppEvent } from '@livebus/protocol';
import { Outbox, type OutboxEvent, type OutboxOptions } from './outbox';
import type { RedisClient } from './redis/client';
import type { BatchResult, RedisStreamWriter, UserBatch } from './redis-stream-writer';

const notice = (i: number): AppEvent => ({ event: 'session.notice', data: { level: 'info', message: String(i) } });

/** A client that stays connected and never says anything (a frozen Redis keeps its sockets). */
function silentClient(): RedisClient {
  const client = new EventEmitter() as EventEmitter & { options: object; status: string };
  client.options = { host: '10.0.0.5', port: 6379 };
  client.status = 'ready';
  client.on('error', () => {});
  return client as unknown as RedisClient;
}

/** A writer whose calls are answered by the test: each call waits in `calls` until resolved. */
function heldWriter() {
  const calls: Array<{ batches: readonly UserBatch[]; answer: (r: Array<BatchResult | Error>) => void }> = [];
  const writer = {
    appendBatches: (_id: string | undefined, batches: readonly UserBatch[]) =>
      new Promise<Array<BatchResult | Error>>((answer) => calls.push({ batches, answer })),
  } as unknown as RedisStreamWriter;
  return { writer, calls };
}

function outboxOver(writer: RedisStreamWriter, options: OutboxOptions = {}) {
  const events: OutboxEvent[] = [];
  const outbox = new Outbox(silentClient(), writer, { onEvent: (e) => events.push(e), ...options });
  return { outbox, events };
}

const settled = (p: Promise<unknown>) => {
  const state = { value: 'pending' as unknown };
  p.then(
    (v) => (state.value = v),
    (e) => (state.value = e),
  );
  return state;
};

describe('the outbox with a Redis that does not answer', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('fails an attempt after attemptTimeoutMs like a lost connection: retried, then redis_unavailable with the outbox off', async () => {
    const { writer, calls } = heldWriter();
    const { outbox, events } = outboxOver(writer, { attemptTimeoutMs: 1_000, retryDelaysMs: [100], maxEvents: 0 });
    const sent = settled(outbox.sendOne('u1', notice(1)));
    await jest.advanceTimersByTimeAsync(1_000);
    expect(outbox.stats()).toMatchObject({ redis: 'down', lastRedisFailure: { code: 'ETIMEDOUT' } });
    expect(events.filter((e) => e.kind === 'unreachable')).toHaveLength(1);
    await jest.advanceTimersByTimeAsync(100 + 1_000);
    // Two attempts, the second the same batch again (its number kept: Redis answers a duplicate if it ran both).
    expect(calls.map((c) => c.batches[0]?.seq)).toEqual([1, 1]);
    expect(sent.value).toMatchObject({ name: 'PublishError', code: 'redis_unavailable', attempts: 2 });
    expect((sent.value as Error).message).toContain('(ETIMEDOUT)');
    expect(outbox.stats()).toMatchObject({ waiting: 0, retried: 2 });
    await outbox.close();
  });

  it('keeps an event that timed out every attempt in the outbox, and stores it when Redis answers', async () => {
    const { writer, calls } = heldWriter();
    const { outbox, events } = outboxOver(writer, { attemptTimeoutMs: 1_000, retryDelaysMs: [100] });
    const sent = settled(outbox.sendOne('u1', notice(1)));
    await jest.advanceTimersByTimeAsync(1_000 + 100 + 1_000);
    expect(events.some((e) => e.kind === 'queued')).toBe(true);
    expect(sent.value).toBe('pending');
    expect(outbox.stats()).toMatchObject({ waiting: 1, queued: 1, redis: 'down' });
    await jest.advanceTimersByTimeAsync(100);
    const stored = { cursor: 'e:1', event: 'session.notice', data: {}, ts: 1 };
    calls.at(-1)?.answer([{ events: [stored], duplicate: false } as unknown as BatchResult]);
    await jest.advanceTimersByTimeAsync(0);
    expect(sent.value).toBe(stored);
    expect(outbox.stats()).toMatchObject({ waiting: 0, stored: 1, redis: 'up' });
    await outbox.close();
  });
});
