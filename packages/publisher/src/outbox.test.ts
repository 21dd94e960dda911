import { EventEmitter } from 'node:events';
import type { AppEvent } from '@livebus/protocol';
import { ReplyError } from 'ioredis';
import { outboxDefaults } from './defaults';
import { InvalidEventError } from './invalid-event-error';
import { Outbox, type OutboxEvent, type OutboxOptions } from './outbox';
import type { RedisClient } from './redis/client';
import { slotOf, userSlot } from './redis/cluster-slot';
import type { CommandDelivery } from './redis/command-delivery';
import { userKeys } from './redis/keyspace';
import type { BatchResult, RedisStreamWriter, UserBatch } from './redis-stream-writer';

const notice = (i: number): AppEvent => ({ event: 'session.notice', data: { level: 'info', message: String(i) } });
/** An event whose JSON is `size` long. */
const sized = (size: number): AppEvent => {
  const bare = JSON.stringify(notice(0)).length - 1;
  return { event: 'session.notice', data: { level: 'info', message: 'x'.repeat(size - bare) } };
};

/** A client that stays connected and never says anything (a frozen Redis keeps its sockets). */
function silentClient(): RedisClient {
  const client = new EventEmitter() as EventEmitter & { options: object; status: string };
  client.options = { host: '10.0.0.5', port: 6379 };
  client.status = 'ready';
  client.on('error', () => {});
  return client as unknown as RedisClient;
}

/** A Redis Cluster client that never says anything; `slots` maps a slot to its node (`host:port`) as ioredis does. */
function clusterClient(slots: string[][] = []) {
  return Object.assign(silentClient(), { isCluster: true, slots });
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

type HeldCall = ReturnType<typeof heldWriter>['calls'][number];

/** A writer that answers each user's batch on its own, as a Redis Cluster does (one call per user, each to its shard). */
function perUserWriter() {
  const calls: Array<{ batch: UserBatch; answer: (r: BatchResult | Error) => void }> = [];
  const writer = {
    appendBatches: (
      _id: string | undefined,
      batches: readonly UserBatch[],
      onCall?: (indexes: readonly number[], out: ReadonlyArray<BatchResult | Error>) => void,
    ) => {
      const out = new Array<BatchResult | Error>(batches.length);
      const answered = batches.map(
        (batch, i) =>
          new Promise<void>((done) =>
            calls.push({
              batch,
              answer: (result) => {
                out[i] = result;
                onCall?.([i], out);
                done();
              },
            }),
          ),
      );
      return Promise.all(answered).then(() => out);
    },
  } as unknown as RedisStreamWriter;
  return { writer, calls };
}

/** Answers a held call as Redis does when it stores every batch of it. */
const storeAll = (call: HeldCall | undefined) =>
  call?.answer(call.batches.map((b) => ({ events: b.events.map(() => ({}) as never), duplicate: false })));

/** A call's batches as `user:events#seq`, and `@places` for a batch sent again. */
const shapeOf = (call: HeldCall | undefined) =>
  call?.batches.map((b) => `${b.userId}:${b.events.length}#${b.seq}${b.positions ? `@${b.positions}` : ''}`);

/** Turns of the event loop, at most 100, until `done()`: the sender wakes a turn after the answers of a burst. */
async function turnsUntil(done: () => boolean): Promise<void> {
  for (let turn = 0; !done() && turn < 100; turn++) await new Promise((resolve) => setImmediate(resolve));
}

/** Waits until the writer holds more than `n` calls; fails (rather than spinning) if none comes. */
async function callsPast(calls: readonly unknown[], n: number): Promise<void> {
  for (let turn = 0; calls.length <= n; turn++) {
    if (turn > 1_000) throw new Error(`the outbox made no call ${n + 1}`);
    await Promise.resolve();
  }
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
    // Sent, and no answer came: Redis may have run it (a caller publishing it again could store it twice).
    expect(sent.value).toMatchObject({
      name: 'PublishError',
      code: 'redis_unavailable',
      attempts: 2,
      maybeStored: true,
    });
    expect((sent.value as Error).message).toMatch(/\(ETIMEDOUT\) after 2 attempt\(s\) \(the event may be stored\)$/);
    expect(outbox.stats()).toMatchObject({ waiting: 0, retried: 2 });
    await outbox.close();
  });

  it('says an event was not stored (maybeStored false) when no attempt reached Redis: queued for a connection that never came', async () => {
    const client = silentClient() as unknown as { status: string };
    client.status = 'reconnecting';
    const gaveUp = Object.assign(new Error('Reached the max retries per request limit (which is 0).'), {
      name: 'MaxRetriesPerRequestError',
    });
    const failing = {
      appendBatches: async (_id: string | undefined, batches: readonly UserBatch[]) => batches.map(() => gaveUp),
    } as unknown as RedisStreamWriter;
    const outbox = new Outbox(client as unknown as RedisClient, failing, { retryDelaysMs: [100], maxEvents: 0 });
    const sent = settled(outbox.sendOne('u1', notice(1)));
    await jest.advanceTimersByTimeAsync(100);
    expect(sent.value).toMatchObject({ code: 'redis_unavailable', attempts: 2, maybeStored: false });
    expect((sent.value as Error).message).not.toContain('may be stored');
    await outbox.close();
  });

  it('says an event Redis refused was not stored, and one lost with a connection that was up may be', async () => {
    const refused = {
      appendBatches: async (_id: string | undefined, batches: readonly UserBatch[]) =>
        batches.map(() => new ReplyError('LOADING Redis is loading the dataset in memory')),
    } as unknown as RedisStreamWriter;
    const loading = new Outbox(silentClient(), refused, { retryDelaysMs: [100], maxEvents: 0 });
    const notStored = settled(loading.sendOne('u1', notice(1)));
    await jest.advanceTimersByTimeAsync(100);
    expect(notStored.value).toMatchObject({ code: 'redis_unavailable', attempts: 2, maybeStored: false });
    await loading.close();
    const lost = {
      appendBatches: async (_id: string | undefined, batches: readonly UserBatch[]) =>
        batches.map(() => new Error('Connection is closed.')),
    } as unknown as RedisStreamWriter;
    const closing = new Outbox(silentClient(), lost, { retryDelaysMs: [100], maxEvents: 0 });
    const maybe = settled(closing.sendOne('u1', notice(1)));
    await jest.advanceTimersByTimeAsync(100);
    expect(maybe.value).toMatchObject({ code: 'redis_unavailable', attempts: 2, maybeStored: true });
    expect((maybe.value as Error).message).toMatch(/\(the event may be stored\)$/);
    await closing.close();
  });

  it('on a Cluster, takes what the writer saw of a failed call: never written (or every write answered) is not stored, a write unanswered may be', async () => {
    // A Cluster client that is ready while one node is down: its state says nothing of that node.
    const gaveUp = new Error('Too many Cluster redirections. Last error: Error: Connection is closed.');
    const writerSaying = (unanswered: boolean | undefined) =>
      ({
        appendBatches: async (
          _id: string | undefined,
          batches: readonly UserBatch[],
          _onCall: unknown,
          deliveries?: Array<CommandDelivery | undefined>,
        ) =>
          batches.map((_, i) => {
            if (deliveries) deliveries[i] = { unanswered };
            return gaveUp;
          }),
      }) as unknown as RedisStreamWriter;
    const outcomes: unknown[] = [];
    for (const unanswered of [false, true, undefined]) {
      const outbox = new Outbox(clusterClient() as unknown as RedisClient, writerSaying(unanswered), {
        retryDelaysMs: [100],
        maxEvents: 0,
      });
      const sent = settled(outbox.sendOne('u1', notice(1)));
      await jest.advanceTimersByTimeAsync(100);
      outcomes.push(sent.value);
      await outbox.close();
    }
    expect(outcomes).toMatchObject([
      { code: 'redis_unavailable', attempts: 2, maybeStored: false },
      { code: 'redis_unavailable', attempts: 2, maybeStored: true },
      // Not seen (a client that auto-pipelines): the client was ready, so it may have had it.
      { code: 'redis_unavailable', attempts: 2, maybeStored: true },
    ]);
    expect((outcomes[0] as Error).message).not.toContain('may be stored');
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

describe('the outbox and an event too large for a frame', () => {
  it('refuses it with InvalidEventError before it is queued: nothing sent, nothing waiting', async () => {
    const { writer, calls } = heldWriter();
    const { outbox } = outboxOver(writer);
    const huge = { event: 'session.notice', data: { level: 'info', message: 'x'.repeat(1_200_000) } } as AppEvent;
    await expect(
      outbox.send([
        { userId: 'u1', event: notice(1) },
        { userId: 'u1', event: huge },
      ]),
    ).rejects.toMatchObject({
      name: 'InvalidEventError',
    });
    await expect(outbox.sendOne('u1', huge)).rejects.toMatchObject({ name: 'InvalidEventError' });
    expect(calls).toHaveLength(0);
    expect(outbox.stats()).toMatchObject({ waiting: 0, dropped: 0 });
    await outbox.close();
  });
});

describe('the outbox and a Redis busy running a script', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('retries a round answered BUSY with its delays, and stores the event once the script is over', async () => {
    const { writer, calls } = heldWriter();
    const { outbox } = outboxOver(writer, { retryDelaysMs: [100] });
    const sent = settled(outbox.sendOne('u1', notice(1)));
    await jest.advanceTimersByTimeAsync(0);
    calls[0]?.answer([
      new ReplyError('BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.'),
    ]);
    await jest.advanceTimersByTimeAsync(100);
    expect(sent.value).toBe('pending');
    expect(outbox.stats()).toMatchObject({ waiting: 1, retried: 1, redis: 'down', lastRedisFailure: { code: 'BUSY' } });
    const stored = { cursor: 'e:1', event: 'session.notice', data: {}, ts: 1 };
    calls[1]?.answer([{ events: [stored], duplicate: false } as unknown as BatchResult]);
    await jest.advanceTimersByTimeAsync(0);
    expect(sent.value).toBe(stored);
    expect(calls.map((c) => c.batches[0]?.seq)).toEqual([1, 1]);
    await outbox.close();
  });
});

describe('an onEvent callback that throws', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('breaks neither the client nor the outbox: events are still stored, and the throw is logged', async () => {
    const logged = jest.spyOn(console, 'error').mockImplementation(() => {});
    const client = silentClient();
    const { writer, calls } = heldWriter();
    const outbox = new Outbox(client, writer, {
      retryDelaysMs: [100],
      onEvent: () => {
        throw new Error('listener bug');
      },
    });
    try {
      // From ioredis' `error` emit: a throw there would reach whoever emitted (an uncaught exception).
      const refused = Object.assign(new Error('connect ECONNREFUSED 10.0.0.5:6379'), { code: 'ECONNREFUSED' });
      expect(() => client.emit('error', refused)).not.toThrow();
      const sent = settled(outbox.sendOne('u1', notice(1)));
      await jest.advanceTimersByTimeAsync(0);
      calls[0]?.answer([new Error('Connection is closed.')]);
      await jest.advanceTimersByTimeAsync(100);
      const stored = { cursor: 'e:1', event: 'session.notice', data: {}, ts: 1 };
      calls[1]?.answer([{ events: [stored], duplicate: false } as unknown as BatchResult]);
      await jest.advanceTimersByTimeAsync(0);
      expect(sent.value).toBe(stored);
      // unreachable (from the client's error), drained and reachable (after the retry): each logged, none lost.
      expect(logged.mock.calls.map((c) => String(c[0]))).toEqual([
        expect.stringContaining('"unreachable"'),
        expect.stringContaining('"reachable"'),
        expect.stringContaining('"drained"'),
      ]);
      expect(logged.mock.calls[0]?.[1]).toMatchObject({ message: 'listener bug' });
      await outbox.close();
    } finally {
      logged.mockRestore();
    }
  });
});

describe('closing the outbox', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  const stored = (n: number) => ({ cursor: `e:${n}`, event: 'session.notice', data: {}, ts: n });

  it('lets the round in flight finish and settles it with its outcome; only events never sent are rejected closed', async () => {
    const { writer, calls } = heldWriter();
    const { outbox, events } = outboxOver(writer);
    const inFlight = settled(outbox.sendOne('u1', notice(1)));
    await jest.advanceTimersByTimeAsync(0);
    expect(calls).toHaveLength(1);
    const neverSent = settled(outbox.sendOne('u1', notice(2)));
    const closing = settled(outbox.close());
    await jest.advanceTimersByTimeAsync(0);
    expect(neverSent.value).toMatchObject({ code: 'closed' });
    expect(inFlight.value).toBe('pending');
    expect(closing.value).toBe('pending');
    calls[0]?.answer([{ events: [stored(1)], duplicate: false } as unknown as BatchResult]);
    await jest.advanceTimersByTimeAsync(0);
    expect(inFlight.value).toEqual(stored(1));
    expect(closing.value).toBeUndefined();
    expect(calls).toHaveLength(1);
    expect(outbox.stats()).toMatchObject({ waiting: 0, stored: 1, dropped: 1 });
    expect(events).toContainEqual({ kind: 'dropped', reason: 'closed', events: 1, waiting: 0 });
  });

  it('rejects an event whose attempt in flight at close fails with redis_unavailable (not retried, counted dropped), and settles within attemptTimeoutMs', async () => {
    const { writer, calls } = heldWriter();
    const { outbox, events } = outboxOver(writer, { attemptTimeoutMs: 1_000 });
    const inFlight = settled(outbox.sendOne('u1', notice(1)));
    await jest.advanceTimersByTimeAsync(0);
    const closing = settled(outbox.close());
    await jest.advanceTimersByTimeAsync(1_000);
    expect(inFlight.value).toMatchObject({ code: 'redis_unavailable', attempts: 1 });
    expect(closing.value).toBeUndefined();
    expect(calls).toHaveLength(1);
    // Let go without Redis's answer: a retry would have followed but for the close.
    expect(outbox.stats()).toMatchObject({ waiting: 0, dropped: 1 });
    expect(events).toContainEqual({ kind: 'dropped', reason: 'closed', events: 1, waiting: 0 });
  });

  it('with attemptTimeoutMs 0 (attempts wait for ever), still settles: the round in flight is given up after 5 s', async () => {
    const { writer, calls } = heldWriter();
    const { outbox } = outboxOver(writer, { attemptTimeoutMs: 0 });
    const inFlight = settled(outbox.sendOne('u1', notice(1)));
    await jest.advanceTimersByTimeAsync(0);
    expect(calls).toHaveLength(1);
    // A frozen Redis: no answer ever comes.
    const closing = settled(outbox.close());
    await jest.advanceTimersByTimeAsync(4_999);
    expect(closing.value).toBe('pending');
    await jest.advanceTimersByTimeAsync(1);
    expect(closing.value).toBeUndefined();
    expect(inFlight.value).toMatchObject({ code: 'redis_unavailable', attempts: 1, maybeStored: true });
    expect((inFlight.value as Error).message).toContain('(ETIMEDOUT)');
    expect(calls).toHaveLength(1);
  });

  it('between retries: rejects closed what was never sent, and redis_unavailable what was (Redis may run it late)', async () => {
    const { writer, calls } = heldWriter();
    const reconnects: Array<boolean | undefined> = [];
    const { outbox } = outboxOver(writer, {
      attemptTimeoutMs: 1_000,
      retryDelaysMs: [5_000],
      batchEvents: 1,
      reconnect: (stale) => reconnects.push(stale),
    });
    const sentOnce = settled(outbox.sendOne('u1', notice(1)));
    const neverSent = settled(outbox.sendOne('u1', notice(2)));
    await jest.advanceTimersByTimeAsync(1_000);
    expect(calls).toHaveLength(1);
    // The attempt got no answer: its connection is to be replaced.
    expect(reconnects).toEqual([true]);
    const closing = settled(outbox.close());
    await jest.advanceTimersByTimeAsync(0);
    expect(sentOnce.value).toMatchObject({ code: 'redis_unavailable' });
    expect(neverSent.value).toMatchObject({ code: 'closed' });
    expect(closing.value).toBeUndefined();
    expect(calls).toHaveLength(1);
    // Both counted: the one never sent at once, the one sent when the sender stops.
    expect(outbox.stats()).toMatchObject({ waiting: 0, dropped: 2 });
  });

  it('counts every event of a call partly sent at close as dropped: the part never sent at once, the part sent when its attempt fails', async () => {
    const { writer, calls } = heldWriter();
    const { outbox, events } = outboxOver(writer, { attemptTimeoutMs: 1_000, batchEvents: 1 });
    const call = settled(
      outbox.send([
        { userId: 'u1', event: notice(1) },
        { userId: 'u1', event: notice(2) },
      ]),
    );
    await jest.advanceTimersByTimeAsync(0);
    // One event a batch: the first is out, the second waits behind it.
    expect(shapeOf(calls[0])).toEqual(['u1:1#1']);
    const closing = settled(outbox.close());
    await jest.advanceTimersByTimeAsync(0);
    expect(call.value).toMatchObject({ code: 'redis_unavailable', maybeStored: true });
    expect(outbox.stats()).toMatchObject({ dropped: 1 });
    // The attempt out gets no answer: the event sent is let go too, and told.
    await jest.advanceTimersByTimeAsync(1_000);
    expect(closing.value).toBeUndefined();
    expect(outbox.stats()).toMatchObject({ waiting: 0, stored: 0, dropped: 2 });
    expect(events.filter((e) => e.kind === 'dropped')).toEqual([
      { kind: 'dropped', reason: 'closed', events: 1, waiting: 0 },
      { kind: 'dropped', reason: 'closed', events: 1, waiting: 0 },
    ]);
  });

  it('counts every event of a call partly sent, waiting for a retry at close, as dropped', async () => {
    const { writer, calls } = heldWriter();
    const { outbox } = outboxOver(writer, { attemptTimeoutMs: 1_000, retryDelaysMs: [5_000], batchEvents: 1 });
    const call = settled(
      outbox.send([
        { userId: 'u1', event: notice(1) },
        { userId: 'u1', event: notice(2) },
      ]),
    );
    // The first event's attempt gets no answer; it waits for its retry, the second behind it.
    await jest.advanceTimersByTimeAsync(1_000);
    expect(calls).toHaveLength(1);
    await outbox.close();
    expect(call.value).toMatchObject({ code: 'redis_unavailable', maybeStored: true });
    expect(outbox.stats()).toMatchObject({ waiting: 0, stored: 0, dropped: 2 });
  });

  it('counts as dropped (closed), and tells, an event sent before and queued for a retry, rejected redis_unavailable at close', async () => {
    const failing = {
      appendBatches: async (_id: string | undefined, batches: readonly UserBatch[]) =>
        batches.map(() => new Error('Connection is closed.')),
    } as unknown as RedisStreamWriter;
    const { outbox, events } = outboxOver(failing, { retryDelaysMs: [5] });
    const queued = settled(outbox.sendOne('u1', notice(1)));
    // Failed every retry: it waits in the outbox (a `202 queued` of the gateway's).
    for (let turn = 0; outbox.stats().queued < 1 && turn < 100; turn++) await jest.advanceTimersByTimeAsync(5);
    expect(outbox.stats()).toMatchObject({ queued: 1, waiting: 1, dropped: 0 });
    await outbox.close();
    expect(queued.value).toMatchObject({ code: 'redis_unavailable' });
    expect((queued.value as Error).message).toContain('(the event may be stored)');
    expect(outbox.stats()).toMatchObject({ waiting: 0, dropped: 1 });
    expect(events.filter((e) => e.kind === 'dropped')).toEqual([
      { kind: 'dropped', reason: 'closed', events: 1, waiting: 0 },
    ]);
  });
});

describe("drain (the publisher's flush)", () => {
  it('answers false when an event it waited for was rejected instead of stored (outbox off, or refused by Redis)', async () => {
    const failing = {
      appendBatches: async (_id: string | undefined, batches: readonly UserBatch[]) =>
        batches.map(() => new Error('Connection is closed.')),
    } as unknown as RedisStreamWriter;
    const off = new Outbox(silentClient(), failing, { retryDelaysMs: [0], maxEvents: 0 });
    const failed = off.sendOne('u1', notice(1));
    failed.catch(() => {});
    expect(await off.drain(1_000)).toBe(false);
    await expect(failed).rejects.toMatchObject({ code: 'redis_unavailable' });
    // Rejected before this flush: not one it waited for.
    expect(await off.drain(1_000)).toBe(true);
    await off.close();

    const refusing = {
      appendBatches: async (_id: string | undefined, batches: readonly UserBatch[]) =>
        batches.map(() => new ReplyError('WRONGTYPE Operation against a key holding the wrong kind of value')),
    } as unknown as RedisStreamWriter;
    const on = new Outbox(silentClient(), refusing);
    const refused = on.send([
      { userId: 'a', event: notice(1) },
      { userId: 'b', event: notice(2) },
    ]);
    refused.catch(() => {});
    expect(await on.drain(1_000)).toBe(false);
    await expect(refused).rejects.toMatchObject({ code: 'redis_error' });
    await on.close();
  });

  it('answers true once every event it waited for is stored, false when time runs out', async () => {
    const { writer, calls } = heldWriter();
    const { outbox } = outboxOver(writer);
    const sent = outbox.sendOne('u1', notice(1));
    expect(await outbox.drain(0)).toBe(false);
    const flushing = outbox.drain(1_000);
    await callsPast(calls, 0);
    storeAll(calls[0]);
    expect(await flushing).toBe(true);
    await sent;
    await outbox.close();
  });
});

describe('the outbox on a client that fails every command at once (its reconnects gave up)', () => {
  it('lets the event loop turn between failed rounds, even with a retry delay of 0', async () => {
    const failing = {
      appendBatches: async (_id: string | undefined, batches: readonly UserBatch[]) =>
        batches.map(() => new Error('Connection is closed.')),
    } as unknown as RedisStreamWriter;
    let reconnects = 0;
    const outbox = new Outbox(silentClient(), failing, { retryDelaysMs: [0], reconnect: () => reconnects++ });
    const event = settled(outbox.sendOne('a', notice(1)));
    // Timers fire between the retries (held in microtasks, the loop would never come back here),
    // and the client is told to connect again before a round after a failure.
    while (reconnects < 3) await new Promise((resolve) => setTimeout(resolve, 5));
    expect(event.value).toBe('pending');
    await outbox.close();
    expect(event.value).toMatchObject({ code: 'redis_unavailable' });
  });
});

describe('a password Redis refuses (WRONGPASS)', () => {
  const refusing = () => {
    let refusals = 0;
    const writer = {
      appendBatches: async (_id: string | undefined, batches: readonly UserBatch[]) => {
        refusals++;
        return batches.map(() => new Error('WRONGPASS invalid username-password pair or user is disabled.'));
      },
    } as unknown as RedisStreamWriter;
    return { writer, refusals: () => refusals };
  };

  it('on a client that was never ready is a wrong password: the publish is refused at once (redis_error)', async () => {
    const client = silentClient() as unknown as { status: string };
    client.status = 'connecting';
    const { writer, refusals } = refusing();
    const outbox = new Outbox(client as unknown as RedisClient, writer, { retryDelaysMs: [0] });
    await expect(outbox.sendOne('a', notice(1))).rejects.toMatchObject({ code: 'redis_error' });
    expect(refusals()).toBe(1);
    await outbox.close();
  });

  it('on a client that was ready (Redis took its password) is a rotation: retried and held, as an outage', async () => {
    const { writer, refusals } = refusing();
    const outbox = new Outbox(silentClient(), writer, { retryDelaysMs: [0] });
    const event = settled(outbox.sendOne('a', notice(1)));
    while (refusals() < 3) await new Promise((resolve) => setTimeout(resolve, 5));
    expect(event.value).toBe('pending');
    await outbox.close();
    expect(event.value).toMatchObject({ code: 'redis_unavailable' });
  });
});

describe('closing the outbox with a round in flight that holds events not sent', () => {
  it("rejects closed a user's event that waited behind its batch in flight (another fence): it was never sent", async () => {
    const { writer, calls } = heldWriter();
    const { outbox } = outboxOver(writer);
    const first = settled(outbox.send([{ userId: 'a', event: notice(1), fence: { key: 'lb:{a}:l', value: '1' } }]));
    const second = settled(outbox.send([{ userId: 'a', event: notice(2), fence: { key: 'lb:{a}:l', value: '2' } }]));
    await callsPast(calls, 0);
    // One call per fence: the second event is in the round, not in its call.
    expect(shapeOf(calls[0])).toEqual(['a:1#1']);
    const closing = outbox.close();
    storeAll(calls[0]);
    await closing;
    expect(first.value).toEqual([{}]);
    expect(second.value).toMatchObject({ code: 'closed' });
  });
});

describe('a fenced publication', () => {
  it("is refused with InvalidEventError (a rejected promise, nothing queued) when its key is not in the user's hash slot or its value is not a string", async () => {
    const { writer, calls } = heldWriter();
    const { outbox } = outboxOver(writer, { attemptTimeoutMs: 100 });
    try {
      const refused = [
        // Another user's lease: CROSSSLOT on a Cluster (a script's keys must share a slot), though a standalone Redis would take it.
        outbox.send([{ userId: 'a', event: notice(1), fence: { key: 'lb:{b}:l', value: '1' } }]),
        outbox.send([{ userId: 'a', event: notice(1), fence: { key: 'lb:{a}:l', value: 1 as never } }]),
        outbox.send([{ userId: 'a', event: notice(1), fence: { value: '1' } as never }]),
        // One bad publication refuses the whole call, as an invalid event does.
        outbox.send([
          { userId: 'b', event: notice(1) },
          { userId: 'a', event: notice(2), fence: { key: 'lb:{b}:l', value: '1' } },
        ]),
      ].map(settled);
      await Promise.resolve();
      expect(refused.map((r) => r.value)).toEqual([
        expect.objectContaining({
          name: 'InvalidEventError',
          message: expect.stringMatching(/fence\.key must be in the user's hash slot/),
        }),
        expect.objectContaining({
          name: 'InvalidEventError',
          message: expect.stringMatching(/fence\.value must be a string/),
        }),
        expect.objectContaining({
          name: 'InvalidEventError',
          message: expect.stringMatching(/fence\.key must be a string/),
        }),
        expect.any(InvalidEventError),
      ]);
      expect(outbox.stats()).toMatchObject({ waiting: 0, dropped: 0 });
      // The user's own lease (its hash tag) goes.
      const ok = settled(outbox.send([{ userId: 'a', event: notice(3), fence: { key: 'lb:{a}:l', value: '1' } }]));
      await callsPast(calls, 0);
      expect(shapeOf(calls[0])).toEqual(['a:1#1']);
      storeAll(calls[0]);
      await turnsUntil(() => ok.value !== 'pending');
      expect(ok.value).toEqual([{}]);
    } finally {
      await outbox.close();
    }
  });
});

describe('the outbox bounded in bytes', () => {
  /** An event whose JSON is `size` characters long. */
  it('refuses a publish that would pass maxBytes with outbox_full, keeps what it holds, and frees the bytes once stored', async () => {
    const { writer, calls } = heldWriter();
    const { outbox, events } = outboxOver(writer, { maxBytes: 1_000 });
    expect(JSON.stringify(sized(400)).length).toBe(400);
    const first = outbox.send([
      { userId: 'u1', event: sized(400) },
      { userId: 'u2', event: sized(400) },
    ]);
    expect(outbox.stats()).toMatchObject({ waiting: 2, waitingBytes: 800, maxBytes: 1_000 });
    const refused = settled(outbox.send([{ userId: 'u3', event: sized(400) }]));
    await Promise.resolve();
    await Promise.resolve();
    expect(refused.value).toMatchObject({ name: 'PublishError', code: 'outbox_full' });
    expect((refused.value as Error).message).toContain('800 of 1000 bytes');
    expect(events).toContainEqual({ kind: 'dropped', reason: 'outbox_full', events: 1, waiting: 2 });
    // What fits still goes in.
    const small = outbox.send([{ userId: 'u3', event: sized(200) }]);
    expect(outbox.stats()).toMatchObject({ waiting: 3, waitingBytes: 1_000, dropped: 1 });
    // The writer is handed the JSON made at validation, and the bytes are freed as events are stored.
    const done = settled(Promise.all([first, small]));
    const sent: number[] = [];
    while (done.value === 'pending') {
      const call = calls.shift();
      if (!call) {
        await Promise.resolve();
        continue;
      }
      sent.push(...call.batches.map((b) => b.json?.[0]?.length ?? 0));
      storeAll(call);
    }
    expect(sent).toEqual([400, 400, 200]);
    expect(outbox.stats()).toMatchObject({ waiting: 0, waitingBytes: 0 });
    await outbox.close();
  });

  it('takes one call larger than the bound when nothing waits (it could never go otherwise); 0 means no bound', async () => {
    const { writer, calls } = heldWriter();
    const { outbox } = outboxOver(writer, { maxBytes: 300 });
    const big = outbox.send([{ userId: 'u1', event: sized(400) }]);
    expect(outbox.stats()).toMatchObject({ waiting: 1, waitingBytes: 400 });
    await expect(outbox.send([{ userId: 'u2', event: sized(100) }])).rejects.toMatchObject({ code: 'outbox_full' });
    await callsPast(calls, 0);
    const call = calls[0] as (typeof calls)[number];
    call.answer([{ events: [{} as never], duplicate: false }]);
    await big;
    await outbox.close();
    const unbounded = outboxOver(heldWriter().writer, { maxBytes: 0 });
    void unbounded.outbox.send([{ userId: 'u1', event: sized(400) }]).catch(() => {});
    void unbounded.outbox.send([{ userId: 'u2', event: sized(400) }]).catch(() => {});
    expect(unbounded.outbox.stats()).toMatchObject({ waiting: 2, maxBytes: 0 });
    await unbounded.outbox.close();
  });
});

it('drain(NaN) rejects with a TypeError naming timeoutMs instead of returning at once with events waiting', async () => {
  const { outbox } = outboxOver(heldWriter().writer);
  void outbox.sendOne('u1', notice(1)).catch(() => {});
  await expect(outbox.drain(Number.NaN)).rejects.toThrow(/^Outbox.drain: timeoutMs must be a number >= 0, got NaN$/);
  await expect(outbox.drain(0)).resolves.toBe(false);
  await outbox.close();
});

describe('the outbox bounded in events', () => {
  it('takes one call of more than maxEvents when nothing waits (a retry of it could never fit), and refuses what comes meanwhile', async () => {
    const { writer, calls } = heldWriter();
    const { outbox } = outboxOver(writer, { maxEvents: 3 });
    const big = settled(outbox.send(Array.from({ length: 5 }, (_, i) => ({ userId: `u${i % 2}`, event: notice(i) }))));
    expect(outbox.stats()).toMatchObject({ waiting: 5, dropped: 0 });
    const later = settled(outbox.sendOne('u2', notice(5)));
    await callsPast(calls, 0);
    expect(later.value).toMatchObject({ code: 'outbox_full', message: expect.stringContaining('holds 5 of 3 events') });
    storeAll(calls[0]);
    await turnsUntil(() => big.value !== 'pending');
    expect(big.value).toHaveLength(5);
    expect(outbox.stats()).toMatchObject({ waiting: 0, stored: 5, dropped: 1 });
    await outbox.close();
  });
});

describe('rounds under load', () => {
  it('sends what queued while a round was in flight in the next round, up to batchEvents, each user once with its events in order', async () => {
    const { writer, calls } = heldWriter();
    const { outbox } = outboxOver(writer);
    const limit = outboxDefaults.batchEvents;
    const answerNext = async () => {
      await callsPast(calls, 0);
      const call = calls.shift();
      storeAll(call);
      return call?.batches ?? [];
    };
    const first = outbox.sendOne('u0', notice(0));
    await callsPast(calls, 0);
    // While the first round is in flight, two events for each of limit / 2 users, round robin, and one more.
    const users = limit / 2;
    const later: Array<Promise<unknown>> = [];
    for (let i = 0; i < limit; i++) later.push(outbox.sendOne(`u${i % users}`, notice(i)));
    later.push(outbox.sendOne('last', notice(limit)));
    expect((await answerNext()).map((b) => b.events.length)).toEqual([1]);
    await first;
    const second = await answerNext();
    expect(second).toHaveLength(users);
    expect(second.every((b) => b.events.length === 2)).toBe(true);
    expect(second[1]?.events.map((e) => (e.data as { message: string }).message)).toEqual(['1', String(users + 1)]);
    expect((await answerNext()).map((b) => b.userId)).toEqual(['last']);
    await Promise.all(later);
    expect(outbox.stats()).toMatchObject({ waiting: 0, stored: limit + 2 });
    await outbox.close();
  });

  describe('with fake timers (retry delays)', () => {
    beforeEach(() => jest.useFakeTimers());
    afterEach(() => jest.useRealTimers());

    it('cuts a round of large events at batchBytes (one event at least), and sends a failed round again with the same batches', async () => {
      const { writer, calls } = heldWriter();
      const { outbox } = outboxOver(writer, { batchBytes: 1_000, retryDelaysMs: [100] });
      const first = outbox.sendOne('u0', notice(0));
      await jest.advanceTimersByTimeAsync(0);
      const later = ['a', 'b', 'a', 'c'].map((user) => outbox.sendOne(user, sized(400)));
      const huge = outbox.sendOne('d', sized(3_000));
      storeAll(calls[0]);
      await first;
      await jest.advanceTimersByTimeAsync(0);
      // 400 + 400 fit in 1 000; the third would pass it: a and b go, a's second event waits.
      expect(shapeOf(calls[1])).toEqual(['a:1#2', 'b:1#3']);
      calls[1]?.answer([new ReplyError('BUSY Redis is busy running a script.'), new ReplyError('BUSY again')]);
      await jest.advanceTimersByTimeAsync(0);
      // a and b wait out their delay (a's second event behind a's first); c tries meanwhile.
      expect(shapeOf(calls[2])).toEqual(['c:1#4']);
      storeAll(calls[2]);
      await jest.advanceTimersByTimeAsync(0);
      // Larger than the bound alone: it goes, in a round of its own.
      expect(shapeOf(calls[3])).toEqual(['d:1#5']);
      storeAll(calls[3]);
      await jest.advanceTimersByTimeAsync(100);
      expect(shapeOf(calls[4])).toEqual(['a:1#2@0', 'b:1#3@0']);
      storeAll(calls[4]);
      await jest.advanceTimersByTimeAsync(0);
      expect(shapeOf(calls[5])).toEqual(['a:1#6']);
      storeAll(calls[5]);
      await Promise.all([...later, huge]);
      expect(outbox.stats()).toMatchObject({ waiting: 0, stored: 6, retried: 2 });
      await outbox.close();
    });

    it("lets the other users' events go on while one user's shard fails over: that user waits its own delays, its events in order", async () => {
      const { writer, calls } = heldWriter();
      const { outbox } = outboxOver(writer, { batchEvents: 2, retryDelaysMs: [100] });
      // a's shard is failing over (CLUSTERDOWN); the others' answer.
      const aFails = (call: HeldCall | undefined) =>
        call?.answer(
          call.batches.map((b) =>
            b.userId === 'a'
              ? new ReplyError('CLUSTERDOWN The cluster is down')
              : { events: b.events.map(() => ({}) as never), duplicate: false },
          ),
        );
      const a1 = settled(outbox.sendOne('a', notice(1)));
      const b1 = outbox.sendOne('b', notice(2));
      await jest.advanceTimersByTimeAsync(0);
      expect(shapeOf(calls[0])).toEqual(['a:1#1', 'b:1#2']);
      const a2 = settled(outbox.sendOne('a', notice(3)));
      const later = [outbox.sendOne('c', notice(4)), outbox.sendOne('d', notice(5))];
      aFails(calls[0]);
      await b1;
      await jest.advanceTimersByTimeAsync(0);
      // a's two events would fill the round: they wait, and c and d go at once.
      expect(shapeOf(calls[1])).toEqual(['c:1#3', 'd:1#4']);
      storeAll(calls[1]);
      await Promise.all(later);
      expect([a1.value, a2.value]).toEqual(['pending', 'pending']);
      await jest.advanceTimersByTimeAsync(100);
      // a's failed batch again, as it was; its next event behind it.
      expect(shapeOf(calls[2])).toEqual(['a:1#1@0']);
      storeAll(calls[2]);
      await jest.advanceTimersByTimeAsync(0);
      expect(shapeOf(calls[3])).toEqual(['a:1#5']);
      storeAll(calls[3]);
      await jest.advanceTimersByTimeAsync(0);
      expect([a1.value, a2.value]).toEqual([{}, {}]);
      expect(outbox.stats()).toMatchObject({ waiting: 0, stored: 5, retried: 1 });
      await outbox.close();
    });

    /** An outbox whose only user, a, failed its first attempt (its shard down) and backs off for 10 s. */
    async function aBackingOff() {
      const { writer, calls } = heldWriter();
      const { outbox } = outboxOver(writer, { retryDelaysMs: [10_000] });
      const a = settled(outbox.sendOne('a', notice(1)));
      await jest.advanceTimersByTimeAsync(0);
      calls[0]?.answer([new ReplyError('CLUSTERDOWN The cluster is down')]);
      await jest.advanceTimersByTimeAsync(0);
      return { outbox, calls, a };
    }

    it('goes at once for a publish that comes while every user waiting backs off', async () => {
      const { outbox, calls, a } = await aBackingOff();
      // a backs off for 10 s: c does not wait for it.
      const c = outbox.sendOne('c', notice(2));
      await jest.advanceTimersByTimeAsync(0);
      expect(shapeOf(calls[1])).toEqual(['c:1#2']);
      storeAll(calls[1]);
      await c;
      expect(a.value).toBe('pending');
      await jest.advanceTimersByTimeAsync(10_000);
      expect(shapeOf(calls[2])).toEqual(['a:1#1@0']);
      storeAll(calls[2]);
      await jest.advanceTimersByTimeAsync(0);
      expect(a.value).toEqual({});
      await outbox.close();
    });

    it('wakes for a publishMany of which one user is not backing off', async () => {
      const { outbox, calls, a } = await aBackingOff();
      const both = settled(
        outbox.send([
          { userId: 'a', event: notice(2) },
          { userId: 'c', event: notice(3) },
        ]),
      );
      await jest.advanceTimersByTimeAsync(0);
      // c goes now; a's second event waits behind a's first.
      expect(shapeOf(calls[1])).toEqual(['c:1#2']);
      storeAll(calls[1]);
      await jest.advanceTimersByTimeAsync(10_000);
      expect(shapeOf(calls[2])).toEqual(['a:1#1@0']);
      storeAll(calls[2]);
      await jest.advanceTimersByTimeAsync(0);
      expect(shapeOf(calls[3])).toEqual(['a:1#3']);
      storeAll(calls[3]);
      await jest.advanceTimersByTimeAsync(0);
      expect([a.value, both.value]).toEqual([{}, [{}, {}]]);
      await outbox.close();
    });

    it('counts a call of many users failing in rounds one after the other as one attempt (outbox off: not refused before its retry)', async () => {
      const { writer, calls } = heldWriter();
      const { outbox } = outboxOver(writer, { maxEvents: 0, batchEvents: 2, retryDelaysMs: [100] });
      const down = (call: HeldCall | undefined) =>
        call?.answer(call.batches.map(() => new Error('Connection is closed.')));
      const call = settled(outbox.send(['u1', 'u2', 'u3', 'u4'].map((userId, i) => ({ userId, event: notice(i) }))));
      await jest.advanceTimersByTimeAsync(0);
      expect(shapeOf(calls[0])).toEqual(['u1:1#1', 'u2:1#2']);
      down(calls[0]);
      await jest.advanceTimersByTimeAsync(0);
      expect(shapeOf(calls[1])).toEqual(['u3:1#3', 'u4:1#4']);
      down(calls[1]);
      await jest.advanceTimersByTimeAsync(0);
      // Each user failed once: the call waits for its retry.
      expect(call.value).toBe('pending');
      await jest.advanceTimersByTimeAsync(100);
      down(calls[2]);
      await jest.advanceTimersByTimeAsync(0);
      expect(call.value).toMatchObject({ code: 'redis_unavailable' });
      await outbox.close();
    });

    it('counts a batch sent again whole against batchEvents where its first event stands: a round never passes the bound for it', async () => {
      const { writer, calls } = heldWriter();
      const { outbox } = outboxOver(writer, { batchEvents: 4, retryDelaysMs: [100] });
      const down = (call: HeldCall | undefined) =>
        call?.answer(call.batches.map(() => new ReplyError('CLUSTERDOWN The cluster is down')));
      const x = outbox.sendOne('x', notice(0));
      await jest.advanceTimersByTimeAsync(0);
      const ab = outbox.send(['a', 'b', 'a', 'b'].map((userId, i) => ({ userId, event: notice(i) })));
      down(calls[0]);
      await jest.advanceTimersByTimeAsync(0);
      expect(shapeOf(calls[1])).toEqual(['a:2#2', 'b:2#3']);
      down(calls[1]);
      await jest.advanceTimersByTimeAsync(100);
      // x's one event and a's two make three; b's two more would make five.
      expect(shapeOf(calls[2])).toEqual(['x:1#1@0', 'a:2#2@0,1']);
      storeAll(calls[2]);
      await jest.advanceTimersByTimeAsync(0);
      expect(shapeOf(calls[3])).toEqual(['b:2#3@0,1']);
      storeAll(calls[3]);
      await Promise.all([x, ab]);
      await outbox.close();
    });

    it('sends a failed batch again with its number and places after a user of its round was refused; later users go meanwhile', async () => {
      const { writer, calls } = heldWriter();
      const { outbox } = outboxOver(writer, { batchBytes: 1_000, retryDelaysMs: [100] });
      const first = outbox.sendOne('u0', notice(0));
      await jest.advanceTimersByTimeAsync(0);
      const refused = settled(outbox.sendOne('a', sized(400)));
      const busy = outbox.send([
        { userId: 'b', event: sized(250) },
        { userId: 'b', event: sized(250) },
      ]);
      const later = [outbox.sendOne('c', sized(300)), outbox.sendOne('d', sized(300))];
      storeAll(calls[0]);
      await first;
      await jest.advanceTimersByTimeAsync(0);
      // 400 + 250 + 250 fit in 1 000; c's 300 would pass it.
      expect(shapeOf(calls[1])).toEqual(['a:1#2', 'b:2#3']);
      calls[1]?.answer([
        new ReplyError('WRONGTYPE Operation against a key holding the wrong kind of value'),
        new ReplyError('BUSY'),
      ]);
      await jest.advanceTimersByTimeAsync(0);
      expect(refused.value).toMatchObject({ name: 'PublishError' });
      // b waits out its delay; c and d (600 of 1 000) go meanwhile.
      expect(shapeOf(calls[2])).toEqual(['c:1#4', 'd:1#5']);
      storeAll(calls[2]);
      await jest.advanceTimersByTimeAsync(100);
      // b's batch again, as it was: its number and its places.
      expect(shapeOf(calls[3])).toEqual(['b:2#3@0,1']);
      storeAll(calls[3]);
      await Promise.all([busy, ...later]);
      expect(outbox.stats()).toMatchObject({ waiting: 0, stored: 5 });
      await outbox.close();
    });
  });

  it("sends a call's events of one user in one round, as one append, rather than cutting them at the round's bound", async () => {
    const { writer, calls } = heldWriter();
    const { outbox } = outboxOver(writer, { batchEvents: 2 });
    const x = outbox.sendOne('x', notice(0));
    await callsPast(calls, 0);
    const b = outbox.sendOne('b', notice(1));
    const call = outbox.send([
      { userId: 'a', event: notice(2) },
      { userId: 'a', event: notice(3) },
    ]);
    storeAll(calls[0]);
    await x;
    await callsPast(calls, 1);
    // b and a's first event would fill the round: a's two go together in the next.
    expect(shapeOf(calls[1])).toEqual(['b:1#2']);
    storeAll(calls[1]);
    await b;
    await callsPast(calls, 2);
    expect(shapeOf(calls[2])).toEqual(['a:2#3']);
    storeAll(calls[2]);
    await call;
    await outbox.close();
  });

  it('takes a round of exactly batchBytes whole, and 0 means no bound in bytes', async () => {
    for (const [batchBytes, expected] of [
      [800, ['a:1', 'b:1']],
      [0, ['a:1', 'b:1', 'c:1']],
    ] as const) {
      const { writer, calls } = heldWriter();
      const { outbox } = outboxOver(writer, { batchBytes });
      const first = outbox.sendOne('u0', notice(0));
      await callsPast(calls, 0);
      const later = ['a', 'b', 'c'].map((user) => outbox.sendOne(user, sized(400)));
      storeAll(calls[0]);
      await first;
      await callsPast(calls, 1);
      expect(calls[1]?.batches.map((b) => `${b.userId}:${b.events.length}`)).toEqual(expected);
      storeAll(calls[1]);
      if (batchBytes > 0) {
        await callsPast(calls, 2);
        storeAll(calls[2]);
      }
      await Promise.all(later);
      await outbox.close();
    }
  });
});

it('rejects a call of two users, one refused and one failing for a passing reason, with the refusal (outbox off)', async () => {
  const { writer, calls } = heldWriter();
  const { outbox } = outboxOver(writer, { maxEvents: 0, retryDelaysMs: [] });
  const both = settled(
    outbox.send([
      { userId: 'a', event: notice(1) },
      { userId: 'b', event: notice(2) },
    ]),
  );
  await callsPast(calls, 0);
  calls[0]?.answer([new ReplyError('CLUSTERDOWN The cluster is down'), new ReplyError('ERR refused')]);
  for (let turn = 0; both.value === 'pending' && turn < 1_000; turn++) await Promise.resolve();
  expect(both.value).toMatchObject({ code: 'redis_error' });
  await outbox.close();
});

describe('overlapping rounds (a Redis Cluster: one call per user, each to its shard)', () => {
  /** {@link callsPast} across turns of the event loop: the sender wakes after the answers that came together. */
  async function callsSoon(calls: readonly unknown[], n: number): Promise<void> {
    for (let turn = 0; calls.length <= n; turn++) {
      if (turn > 100) throw new Error(`the outbox made no call ${n + 1}`);
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  it('sends other users while a call is out; that user goes again once answered, what queued behind it as one batch', async () => {
    const { writer, calls } = heldWriter();
    const outbox = new Outbox(clusterClient() as unknown as RedisClient, writer);
    const a1 = outbox.sendOne('a', notice(1));
    await callsSoon(calls, 0);
    const a2 = outbox.sendOne('a', notice(2));
    const a3 = outbox.sendOne('a', notice(3));
    const waitingA = settled(Promise.all([a1, a2, a3]));
    const b = outbox.sendOne('b', notice(4));
    await callsSoon(calls, 1);
    expect([shapeOf(calls[0]), shapeOf(calls[1])]).toEqual([['a:1#1'], ['b:1#2']]);
    storeAll(calls[1]);
    await b;
    expect(waitingA.value).toBe('pending');
    storeAll(calls[0]);
    await callsSoon(calls, 2);
    expect(shapeOf(calls[2])).toEqual(['a:2#3']);
    storeAll(calls[2]);
    await Promise.all([a1, a2, a3]);
    expect(calls).toHaveLength(3);
    expect(outbox.stats()).toMatchObject({ waiting: 0, stored: 4 });
    await outbox.close();
  });

  it('takes at most batchEvents in a round, and the rest at once in the next: the calls out hold no one else', async () => {
    const { writer, calls } = heldWriter();
    const outbox = new Outbox(clusterClient() as unknown as RedisClient, writer, { batchEvents: 2 });
    // a's two events are out and never answered (its shard frozen): b and c still go.
    const a = settled(
      outbox.send([
        { userId: 'a', event: notice(0) },
        { userId: 'a', event: notice(1) },
      ]),
    );
    await callsSoon(calls, 0);
    const later = ['b', 'c', 'd'].map((user, i) => outbox.sendOne(user, notice(i + 2)));
    await callsSoon(calls, 2);
    expect(calls.map(shapeOf)).toEqual([['a:2#1'], ['b:1#2', 'c:1#3'], ['d:1#4']]);
    storeAll(calls[1]);
    storeAll(calls[2]);
    await Promise.all(later);
    expect(a.value).toBe('pending');
    storeAll(calls[0]);
    await outbox.close();
    expect(a.value).toEqual([{}, {}]);
  });

  it("goes on after a call of two users was refused for one while the other's call is out", async () => {
    const { writer, calls } = perUserWriter();
    const outbox = new Outbox(clusterClient() as unknown as RedisClient, writer, { attemptTimeoutMs: 0 });
    const both = settled(
      outbox.send([
        { userId: 'f', event: notice(1) },
        { userId: 'b', event: notice(2) },
      ]),
    );
    await callsSoon(calls, 1);
    calls[1]?.answer(new ReplyError('ERR refused'));
    // The sender has seen the queue empty (a turn of the event loop).
    await new Promise((resolve) => setImmediate(resolve));
    // The call is refused as a whole and leaves the queue; f's call is still out.
    expect(both.value).toMatchObject({ code: 'redis_error' });
    expect(outbox.stats().waiting).toBe(0);
    const later = outbox.sendOne('h', notice(3));
    await callsSoon(calls, 2);
    expect(calls[2]?.batch.userId).toBe('h');
    calls[2]?.answer({ events: [{} as never], duplicate: false });
    await later;
    calls[0]?.answer({ events: [{} as never], duplicate: false });
    const again = outbox.sendOne('f', notice(4));
    await callsSoon(calls, 3);
    calls[3]?.answer({ events: [{} as never], duplicate: false });
    await again;
    await outbox.close();
  });

  it('lets the event loop turn between failed rounds, even with a retry delay of 0', async () => {
    const failing = {
      appendBatches: async (_id: string | undefined, batches: readonly UserBatch[]) =>
        batches.map(() => new Error('Connection is closed.')),
    } as unknown as RedisStreamWriter;
    let reconnects = 0;
    const outbox = new Outbox(clusterClient() as unknown as RedisClient, failing, {
      retryDelaysMs: [0],
      reconnect: () => reconnects++,
    });
    const event = settled(outbox.sendOne('a', notice(1)));
    // Held in microtasks, the sender would never let this timer fire.
    while (reconnects < 3) await new Promise((resolve) => setTimeout(resolve, 5));
    expect(event.value).toBe('pending');
    await outbox.close();
    expect(event.value).toMatchObject({ code: 'redis_unavailable' });
  });

  it('close() waits for the calls out (their outcome stands) and refuses what was never sent', async () => {
    const { writer, calls } = heldWriter();
    const outbox = new Outbox(clusterClient() as unknown as RedisClient, writer);
    const a1 = settled(outbox.sendOne('a', notice(1)));
    await callsSoon(calls, 0);
    const a2 = settled(outbox.sendOne('a', notice(2)));
    let closed = false;
    const closing = outbox.close().then(() => {
      closed = true;
    });
    await Promise.resolve();
    expect(a2.value).toMatchObject({ code: 'closed' });
    expect([a1.value, closed]).toEqual(['pending', false]);
    storeAll(calls[0]);
    await closing;
    expect(a1.value).toEqual({});
    expect(outbox.stats()).toMatchObject({ waiting: 0, stored: 1, dropped: 1 });
  });
});

describe('what the outbox tells while Redis is away', () => {
  const failingWriter = {
    appendBatches: async (_id: string | undefined, batches: readonly UserBatch[]) =>
      batches.map(() => new Error('Connection is closed.')),
  } as unknown as RedisStreamWriter;

  it.each([
    ['a standalone Redis', false],
    ['a Redis Cluster', true],
  ])('never says drained for events refused while Redis stays away (%s, outbox off)', async (_name, cluster) => {
    const client = cluster ? (clusterClient() as unknown as RedisClient) : silentClient();
    const events: OutboxEvent[] = [];
    const outbox = new Outbox(client, failingWriter, {
      maxEvents: 0,
      retryDelaysMs: [0],
      onEvent: (e) => events.push(e),
    });
    await expect(outbox.sendOne('a', notice(1))).rejects.toMatchObject({ code: 'redis_unavailable' });
    await expect(outbox.sendOne('a', notice(2))).rejects.toMatchObject({ code: 'redis_unavailable' });
    expect(events.map((e) => e.kind)).toEqual(['unreachable']);
    expect(outbox.stats().redis).toBe('down');
    await outbox.close();
  });

  it('says nothing more once closed, when a call out is answered after', async () => {
    const { writer, calls } = perUserWriter();
    const events: OutboxEvent[] = [];
    const client = clusterClient() as unknown as RedisClient;
    const outbox = new Outbox(client, writer, { retryDelaysMs: [0], onEvent: (e) => events.push(e) });
    const a = outbox.sendOne('a', notice(1));
    await turnsUntil(() => calls.length >= 1);
    calls[0]?.answer(new Error('Connection is closed.'));
    await turnsUntil(() => calls.length >= 2);
    const closing = outbox.close();
    calls[1]?.answer({ events: [{} as never], duplicate: false });
    await closing;
    await a;
    expect(events.map((e) => e.kind)).toEqual(['unreachable']);
  });

  it('on a Cluster, counts a call partly sent at close by what became of each part: stored as stored, never sent as dropped', async () => {
    const { writer, calls } = perUserWriter();
    const client = clusterClient() as unknown as RedisClient;
    const outbox = new Outbox(client, writer, { batchEvents: 1, attemptTimeoutMs: 0 });
    // a's first event and b's go at once, each to its node; a's second waits behind a's first.
    const call = outbox.send([
      { userId: 'a', event: notice(1) },
      { userId: 'b', event: notice(2) },
      { userId: 'a', event: notice(3) },
    ]);
    call.catch(() => {});
    await turnsUntil(() => calls.length >= 2);
    const closing = outbox.close();
    await expect(call).rejects.toMatchObject({ code: 'redis_unavailable', maybeStored: true });
    expect(outbox.stats()).toMatchObject({ dropped: 1 });
    // One node answers while the other's answer is still to come: b's event is not let go meanwhile.
    calls[0]?.answer({ events: [{} as never], duplicate: false });
    await turnsUntil(() => outbox.stats().stored >= 1);
    expect(outbox.stats()).toMatchObject({ stored: 1, dropped: 1 });
    calls[1]?.answer({ events: [{} as never], duplicate: false });
    await closing;
    expect(outbox.stats()).toMatchObject({ waiting: 0, stored: 2, dropped: 1 });
  });

  it('on a Cluster, drops a connection answered READONLY at once, not after the slowest call of its round', async () => {
    const { writer, calls } = perUserWriter();
    const reconnects: Array<[string | undefined, readonly string[] | undefined]> = [];
    const client = clusterClient() as unknown as RedisClient;
    const outbox = new Outbox(client, writer, {
      retryDelaysMs: [60_000],
      reconnect: (_stale, cause, users) => reconnects.push([cause, users]),
    });
    const sent = [outbox.sendOne('frozen', notice(1)), outbox.sendOne('b', notice(2))];
    await turnsUntil(() => calls.length >= 2);
    calls[1]?.answer(new ReplyError("READONLY You can't write against a read only replica."));
    expect(reconnects).toEqual([['readonly', ['b']]]);
    const closing = outbox.close();
    calls[0]?.answer({ events: [{} as never], duplicate: false });
    await closing;
    await Promise.allSettled(sent);
  });

  it('retries at once a call that failed after the client reconnected, as a reconnect ends every wait', async () => {
    const { writer, calls } = perUserWriter();
    const client = clusterClient();
    const outbox = new Outbox(client as unknown as RedisClient, writer, { retryDelaysMs: [60_000] });
    const a = outbox.sendOne('a', notice(1));
    await turnsUntil(() => calls.length >= 1);
    // The connection dropped and came back while the call was out; its failure comes after.
    client.emit('ready');
    calls[0]?.answer(new Error('Connection is closed.'));
    await turnsUntil(() => calls.length >= 2);
    expect(calls).toHaveLength(2);
    calls[1]?.answer({ events: [{} as never], duplicate: false });
    await a;
    await outbox.close();
  });
});

it("keeps, on a Cluster, the last tenth of the outbox for other nodes' users: a node that stops answering refuses its own users first", async () => {
  // a1 and a2 live on node A, b on node B.
  const slots: string[][] = [];
  for (const [user, node] of [
    ['a1', 'A:1'],
    ['a2', 'A:1'],
    ['b', 'B:2'],
  ] as const) {
    slots[slotOf(userKeys(user).stream)] = [node];
  }
  const { writer, calls } = perUserWriter();
  const outbox = new Outbox(clusterClient(slots) as unknown as RedisClient, writer, { maxEvents: 10 });
  // Node A answers nothing: a1's call is out, and its users' events pile up, whoever publishes them.
  const held = [outbox.sendOne('a1', notice(0))];
  for (let i = 1; i < 9; i++) held.push(outbox.sendOne(i % 2 ? 'a2' : 'a1', notice(i)));
  const tenth = settled(outbox.sendOne('a2', notice(9)));
  await Promise.resolve();
  expect(tenth.value).toMatchObject({ code: 'outbox_full' });
  expect((tenth.value as Error).message).toMatch(/users of the Redis node A:1 hold 9 of the outbox's 10 events/);
  // A call naming a user of node A is refused whole, as past the bounds themselves.
  const mixed = settled(
    outbox.send([
      { userId: 'b', event: notice(10) },
      { userId: 'a1', event: notice(11) },
    ]),
  );
  await Promise.resolve();
  expect(mixed.value).toMatchObject({ code: 'outbox_full' });
  // A user of node B still gets in, and is stored.
  const b = outbox.sendOne('b', notice(12));
  for (let turn = 0; !calls.some((c) => c.batch.userId === 'b') && turn < 100; turn++) {
    await new Promise((resolve) => setImmediate(resolve));
  }
  calls.find((c) => c.batch.userId === 'b')?.answer({ events: [{} as never], duplicate: false });
  await b;
  expect(outbox.stats()).toMatchObject({ waiting: 9, dropped: 3 });
  // Once node A answers, its users' events leave, and its share is free again.
  for (const c of calls)
    if (c.batch.userId !== 'b') c.answer({ events: c.batch.events.map(() => ({}) as never), duplicate: false });
  for (let turn = 0; outbox.stats().waiting > 0 && turn < 100; turn++) {
    for (const c of calls.splice(0)) c.answer({ events: c.batch.events.map(() => ({}) as never), duplicate: false });
    await new Promise((resolve) => setImmediate(resolve));
  }
  await Promise.all(held);
  calls.length = 0;
  const again = settled(outbox.sendOne('a1', notice(13)));
  await turnsUntil(() => calls.length > 0);
  calls[0]?.answer({ events: [{} as never], duplicate: false });
  for (let turn = 0; again.value === 'pending' && turn < 100; turn++)
    await new Promise((resolve) => setImmediate(resolve));
  expect(again.value).toEqual({});
  await outbox.close();
});

it("applies a Cluster node's share as the bounds themselves: a call alone in the outbox goes, one that would take the kept tenth does not", async () => {
  const slots: string[][] = [];
  slots[slotOf(userKeys('a').stream)] = ['A:1'];
  slots[slotOf(userKeys('b').stream)] = ['B:2'];
  const { writer, calls } = perUserWriter();
  // One event: a node's share is none of it, yet an event alone goes.
  const tiny = new Outbox(clusterClient(slots) as unknown as RedisClient, writer, { maxEvents: 1 });
  const one = tiny.sendOne('a', notice(0));
  await turnsUntil(() => calls.length > 0);
  calls[0]?.answer({ events: [{} as never], duplicate: false });
  await expect(one).resolves.toEqual({});
  await tiny.close();
  // Ten events for node A's users in one call, of ten places: past its nine with b waiting, but
  // alone it goes (it could never fit otherwise), as a call past the bounds themselves.
  const ten = new Outbox(clusterClient(slots) as unknown as RedisClient, writer, { maxEvents: 10 });
  const many = Array.from({ length: 10 }, (_, i) => ({ userId: 'a', event: notice(i) }));
  const waiting = settled(ten.sendOne('b', notice(0)));
  await expect(ten.send(many)).rejects.toMatchObject({ code: 'outbox_full' });
  await turnsUntil(() => calls.length >= 2);
  calls[1]?.answer({ events: [{} as never], duplicate: false });
  await turnsUntil(() => waiting.value !== 'pending');
  const alone = settled(ten.send(many));
  await turnsUntil(() => calls.length >= 3);
  calls[2]?.answer({ events: many.map(() => ({}) as never), duplicate: false });
  await turnsUntil(() => alone.value !== 'pending');
  expect(alone.value).toHaveLength(10);
  await ten.close();
  calls.length = 0;
  // 1 000 bytes: b waits with a 100-byte event, and a's 950-byte event would pass node A's 900.
  const outbox = new Outbox(clusterClient(slots) as unknown as RedisClient, writer, { maxBytes: 1_000 });
  const b = settled(outbox.sendOne('b', sized(100)));
  await expect(outbox.sendOne('a', sized(950))).rejects.toMatchObject({ code: 'outbox_full' });
  await turnsUntil(() => calls.length >= 1);
  calls[0]?.answer({ events: [{} as never], duplicate: false });
  await turnsUntil(() => b.value !== 'pending');
  expect(b.value).toEqual({});
  await outbox.close();
});

describe('a Cluster node that cannot be reached: the messages name it, not the seed', () => {
  /** A writer whose every call fails with `error`. */
  const failingWith = (error: Error) =>
    ({
      appendBatches: async (_id: string | undefined, batches: readonly UserBatch[]) => batches.map(() => error),
    }) as unknown as RedisStreamWriter;
  const slots: string[][] = [];
  slots[userSlot('u1')] = ['10.0.0.7:7003'];
  const clusterOutbox = (error: Error, options: OutboxOptions = {}) =>
    new Outbox(clusterClient(slots) as unknown as RedisClient, failingWith(error), {
      retryDelaysMs: [0],
      redisAddress: 'redis://seed.internal:7000',
      ...options,
    });

  it("names the user's node (from the slot map), with the seed, in the rejection and the stats (outbox off)", async () => {
    const outbox = clusterOutbox(new Error('Connection is closed.'), { maxEvents: 0 });
    const error = await outbox.sendOne('u1', notice(1)).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'redis_unavailable', attempts: 2 });
    expect((error as Error).message).toMatch(
      /^cannot reach Redis Cluster node 10\.0\.0\.7:7003 \(seed seed\.internal:7000\)/,
    );
    expect(outbox.stats().lastRedisFailure?.message).toContain('10.0.0.7:7003');
    await outbox.close();
  });

  it('prefers the address the error carries, and names the node in the rejection at close (outbox on)', async () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 10.0.0.8:7004'), {
      code: 'ECONNREFUSED',
      address: '10.0.0.8',
      port: 7004,
    });
    const outbox = clusterOutbox(refused);
    const sent = settled(outbox.sendOne('u1', notice(1)));
    for (let turn = 0; outbox.stats().queued < 1 && turn < 100; turn++) {
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    await outbox.close();
    expect(sent.value).toMatchObject({ code: 'redis_unavailable' });
    expect((sent.value as Error).message).toMatch(
      /^cannot reach Redis Cluster node 10\.0\.0\.8:7004 \(seed seed\.internal:7000\) \(ECONNREFUSED\)/,
    );
  });
  it('keeps the last failure, of whichever node, and tells each node once while Redis stays down', async () => {
    const twoNodes: string[][] = [];
    twoNodes[userSlot('u1')] = ['10.0.0.7:7003'];
    twoNodes[userSlot('u2')] = ['10.0.0.8:7004'];
    const refusedBy = (port: number) =>
      Object.assign(new Error(`connect ECONNREFUSED 10.0.0.${port - 6996}:${port}`), {
        code: 'ECONNREFUSED',
        address: `10.0.0.${port - 6996}`,
        port,
      });
    const writer = {
      appendBatches: async (_id: string | undefined, batches: readonly UserBatch[]) =>
        batches.map((b) => refusedBy(b.userId === 'u1' ? 7003 : 7004)),
    } as unknown as RedisStreamWriter;
    const events: OutboxEvent[] = [];
    const outbox = new Outbox(clusterClient(twoNodes) as unknown as RedisClient, writer, {
      retryDelaysMs: [0],
      redisAddress: 'redis://seed.internal:7000',
      maxEvents: 0,
      onEvent: (e) => events.push(e),
    });
    const lastNode = () => /node (\S+)/.exec(outbox.stats().lastRedisFailure?.message ?? '')?.[1];
    const seen: Array<string | undefined> = [];
    for (const user of ['u1', 'u2', 'u1']) {
      await expect(outbox.sendOne(user, notice(1))).rejects.toMatchObject({ code: 'redis_unavailable' });
      seen.push(lastNode());
    }
    expect(seen).toEqual(['10.0.0.7:7003', '10.0.0.8:7004', '10.0.0.7:7003']);
    expect(outbox.stats()).toMatchObject({ redis: 'down', lastRedisFailure: { code: 'ECONNREFUSED' } });
    // Once per node and cause, not per attempt (six attempts failed).
    const told = events.flatMap((e) => (e.kind === 'unreachable' ? [e.failure.message] : []));
    expect(told).toEqual([
      'cannot reach Redis Cluster node 10.0.0.7:7003 (seed seed.internal:7000) (ECONNREFUSED)',
      'cannot reach Redis Cluster node 10.0.0.8:7004 (seed seed.internal:7000) (ECONNREFUSED)',
    ]);
    await outbox.close();
  });

  it("on a partial outage, a call stored on another node ends the outage: unreachable and reachable alternate with the node's retries", async () => {
    const twoNodes: string[][] = [];
    twoNodes[userSlot('u1')] = ['10.0.0.7:7003'];
    twoNodes[userSlot('u2')] = ['10.0.0.8:7004'];
    const refused = Object.assign(new Error('connect ECONNREFUSED 10.0.0.7:7003'), {
      code: 'ECONNREFUSED',
      address: '10.0.0.7',
      port: 7003,
    });
    let u1Down = true;
    let u1Tried = () => {};
    const u1Try = () =>
      new Promise<void>((tried) => {
        u1Tried = tried;
      });
    // Redis' state as seen at each call for u1 (its last failure applied) and after each of u2's stored.
    const timeline: string[] = [];
    const writer = {
      appendBatches: async (_id: string | undefined, batches: readonly UserBatch[]) =>
        batches.map((b) => {
          if (b.userId === 'u1') {
            timeline.push(`u1 sent: ${outbox.stats().redis}`);
            u1Tried();
            if (u1Down) return refused;
          }
          return { events: b.events.map(() => ({}) as never), duplicate: false };
        }),
    } as unknown as RedisStreamWriter;
    const events: OutboxEvent[] = [];
    const outbox = new Outbox(clusterClient(twoNodes) as unknown as RedisClient, writer, {
      retryDelaysMs: [10, 10, 10],
      redisAddress: 'redis://seed.internal:7000',
      onEvent: (e) => events.push(e),
    });
    const first = u1Try();
    const u1 = outbox.sendOne('u1', notice(0));
    await first;
    for (let i = 1; i <= 3; i++) {
      await outbox.sendOne('u2', notice(i));
      timeline.push(`u2 stored: ${outbox.stats().redis}`);
      await u1Try();
    }
    u1Down = false;
    await u1;
    // Up again at each of u2's stores, down again at u1's next failure (docs/reliability.md). (u1's
    // retries and u2's stores interleave as their timers fall: the order of the lines is not fixed.)
    expect(timeline.filter((line) => line.startsWith('u2 stored'))).toEqual([
      'u2 stored: up',
      'u2 stored: up',
      'u2 stored: up',
    ]);
    const told = events.flatMap((e) => (e.kind === 'unreachable' || e.kind === 'reachable' ? [e.kind] : []));
    expect(told).toEqual(told.map((_, k) => (k % 2 === 0 ? 'unreachable' : 'reachable')));
    expect(told.at(-1)).toBe('reachable');
    expect(told.filter((kind) => kind === 'unreachable').length).toBeGreaterThanOrEqual(2);
    expect(outbox.stats()).toMatchObject({ redis: 'up', lastRedisFailure: { code: 'ECONNREFUSED' } });
    await outbox.close();
  });

  it("says why from the node's own error of the attempt when the call's only says ioredis gave up", async () => {
    const client = clusterClient(slots);
    const refused = Object.assign(new Error('connect ECONNREFUSED 10.0.0.7:7003'), {
      code: 'ECONNREFUSED',
      address: '10.0.0.7',
      port: 7003,
    });
    const gaveUp = new Error('Too many Cluster redirections. Last error: Error: Connection is closed.');
    let attempt = 0;
    const writer = {
      appendBatches: async (_id: string | undefined, batches: readonly UserBatch[]) => {
        // ioredis tells the node's own error (its connect refused) as it tries, then gives the call up.
        if (++attempt === 2) client.emit('node error', refused, '10.0.0.7:7003');
        return batches.map(() => gaveUp);
      },
    } as unknown as RedisStreamWriter;
    const outbox = new Outbox(client as unknown as RedisClient, writer, {
      retryDelaysMs: [0],
      redisAddress: 'redis://seed.internal:7000',
      maxEvents: 0,
    });
    const error = await outbox.sendOne('u1', notice(1)).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'redis_unavailable', attempts: 2, cause: gaveUp });
    expect((error as Error).message).toBe(
      'cannot reach Redis Cluster node 10.0.0.7:7003 (seed seed.internal:7000) (ECONNREFUSED) after 2 attempt(s) (the event may be stored)',
    );
    expect(outbox.stats().lastRedisFailure).toMatchObject({ code: 'ECONNREFUSED' });
    await outbox.close();
  });
});

describe('a retry delay after an attempt that timed out (fake timers)', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('counts the delay from when the attempt went: none left after a timeout longer than it, the rest after a shorter one', async () => {
    const { writer, calls } = heldWriter();
    const { outbox } = outboxOver(writer, { attemptTimeoutMs: 200, retryDelaysMs: [100, 1_000] });
    const a = settled(outbox.sendOne('a', notice(1)));
    await jest.advanceTimersByTimeAsync(0);
    expect(calls).toHaveLength(1);
    // Timed out after 200 ms, 100 past its first delay: sent again at once, the same batch.
    // (the sender yields one turn, a timer of 1 ms, after a failed round)
    await jest.advanceTimersByTimeAsync(201);
    expect(calls.map(shapeOf)).toEqual([['a:1#1'], ['a:1#1@0']]);
    // Timed out again (200 ms): its second delay, 1 000 ms from when it went, leaves 800 to wait.
    await jest.advanceTimersByTimeAsync(200);
    expect(calls).toHaveLength(2);
    await jest.advanceTimersByTimeAsync(799);
    expect(calls).toHaveLength(2);
    await jest.advanceTimersByTimeAsync(1);
    await jest.advanceTimersByTimeAsync(0);
    expect(calls).toHaveLength(3);
    storeAll(calls[2]);
    await jest.advanceTimersByTimeAsync(0);
    expect(a.value).toEqual({});
    expect(outbox.stats()).toMatchObject({ retried: 2, stored: 1 });
    await outbox.close();
  });
});
