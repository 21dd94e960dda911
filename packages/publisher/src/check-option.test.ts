import { EventEmitter } from 'node:events';
import { Outbox, type OutboxOptions } from './outbox';
import type { RedisClient } from './redis/client';
import type { RedisStreamWriter } from './redis-stream-writer';
import { type RetentionOptions, resolveRetention } from './retention';

const client = () => {
  const c = new EventEmitter() as EventEmitter & { options: object; status: string };
  c.options = { host: '127.0.0.1', port: 6379 };
  c.status = 'ready';
  return c as unknown as RedisClient;
};
const writer = {} as RedisStreamWriter;
const outbox = (options: OutboxOptions) => () => new Outbox(client(), writer, options);

describe('Outbox options out of range are refused at construction, naming the option', () => {
  it.each<[OutboxOptions, RegExp]>([
    [{ maxEvents: Number.NaN }, /^Outbox: maxEvents must be a whole number >= 0 \(0: no outbox\), got NaN$/],
    [{ maxEvents: -1 }, /maxEvents must be a whole number >= 0/],
    [{ maxEvents: 1.5 }, /maxEvents must be a whole number >= 0/],
    [{ maxBytes: -1 }, /maxBytes must be a number >= 0 \(0: no bound in bytes\), got -1/],
    [{ batchEvents: 0 }, /batchEvents must be a whole number >= 1, got 0/],
    [{ batchEvents: Number.NaN }, /batchEvents must be a whole number >= 1, got NaN/],
    [{ batchBytes: Number.NaN }, /batchBytes must be a number >= 0/],
    [{ batchBytes: -5 }, /batchBytes must be a number >= 0/],
    [{ attemptTimeoutMs: Number.POSITIVE_INFINITY }, /attemptTimeoutMs must be a number >= 0 and <= 2147483647/],
    [{ attemptTimeoutMs: 2 ** 31 }, /attemptTimeoutMs must be a number >= 0 and <= 2147483647/],
    [{ retryDelaysMs: [] }, /retryDelaysMs must hold at least one delay while the outbox is on/],
    [{ retryDelaysMs: '1000,2000' as never }, /retryDelaysMs must be an array of milliseconds, got "1000,2000"/],
    [{ retryDelaysMs: [1000, -1] }, /retryDelaysMs\[1\] must be a number >= 0 and <= 2147483647, got -1/],
  ])('%p', (options, message) => {
    expect(outbox(options)).toThrow(TypeError);
    expect(outbox(options)).toThrow(message);
  });

  it('takes the edges of each range, and `undefined` as the default', () => {
    expect(
      outbox({ maxEvents: 0, maxBytes: 0, batchEvents: 1, batchBytes: 0, attemptTimeoutMs: 0, retryDelaysMs: [0] }),
    ).not.toThrow();
    expect(outbox({ maxEvents: undefined, batchEvents: undefined, retryDelaysMs: undefined })).not.toThrow();
    // No retries at all: the outbox off, a failed event rejects at once (livebus-publish --retries 0).
    expect(outbox({ maxEvents: 0, retryDelaysMs: [] })).not.toThrow();
  });
});

describe('retention options out of range are refused, naming the option', () => {
  it.each<[RetentionOptions, RegExp]>([
    [{ retentionEvents: -1 }, /^retention: retentionEvents must be a whole number >= 0 \(0: keep none\), got -1$/],
    [{ retentionMs: 1.5 }, /retentionMs must be a whole number >= 0, got 1.5/],
    [{ retentionMs: Number.NaN }, /retentionMs must be a whole number >= 0, got NaN/],
    [{ retentionBytes: '1mb' as never }, /retentionBytes must be a whole number >= 1024, got "1mb"/],
    // 0 would trim each stream to nothing on every append: every resume would hear `gap`.
    [{ retentionBytes: 0 }, /retentionBytes must be a whole number >= 1024, got 0/],
    [{ retentionBytes: 1023 }, /retentionBytes must be a whole number >= 1024, got 1023/],
    [{ epochTtlMs: -1 }, /epochTtlMs must be a whole number >= 0/],
  ])('%p', (options, message) => {
    expect(() => resolveRetention(options)).toThrow(message);
  });

  it("applies the default to an option given as undefined, and takes 0 events and 1024 bytes (the gateway's least)", () => {
    const r = resolveRetention({ retentionMs: undefined, retentionEvents: 0, retentionBytes: 1024 });
    expect(r.retentionMs).toBe(300_000);
    expect(r.streamTtlMs).toBe(360_000);
    expect(r.retentionEvents).toBe(0);
    expect(r.retentionBytes).toBe(1024);
  });
});
