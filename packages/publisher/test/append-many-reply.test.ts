import type { Redis } from 'ioredis';
import { RedisStreamWriter, type UserBatch } from '../src';

/** A client whose every script call answers `reply` (the writer reads only EVALSHA's answer). */
const answering = (reply: unknown) => ({ evalsha: async () => reply }) as unknown as Redis;

const batch = (userId: string): UserBatch => ({
  userId,
  events: [{ event: 'session.notice', data: { level: 'info', message: userId } }],
});

const outcome = (r: unknown) => (r instanceof Error ? `error: ${r.message}` : 'stored');

describe('appendBatches reads each user of an appendMany reply on its own', () => {
  it('a flag it does not know, or no number at all, is an error for that user, never "stored"', async () => {
    const writer = new RedisStreamWriter(
      answering(['e1', 1, 1000, 0, 'e2', 1, 1000, 7, 'e3', 1, 1000, '', 'e4', 1, 1000, 'x', 'e5', 4, 1000, '0']),
    );
    const results = await writer.appendBatches('p', ['a', 'b', 'c', 'd', 'e'].map(batch));
    expect(results.map(outcome)).toEqual([
      'stored',
      expect.stringMatching(/^error: appendMany answered an unreadable result for user "b"/),
      expect.stringMatching(/^error: appendMany answered an unreadable result for user "c"/),
      expect.stringMatching(/^error: appendMany answered an unreadable result for user "d"/),
      'stored',
    ]);
    expect(results[4]).toMatchObject({ events: [{ cursor: 'e5:4', ts: 1000 }], duplicate: false });
  });

  it('a stored flag without an epoch or a first offset is an error too', async () => {
    const writer = new RedisStreamWriter(answering(['', 1, 1000, 0, 'e2', 0, 1000, 1, 'e3', 'x', 1000, 0]));
    const results = await writer.appendBatches('p', ['a', 'b', 'c'].map(batch));
    expect(results.every((r) => r instanceof Error)).toBe(true);
  });

  it('a reply of the wrong length is an error for every user of the call (its values may be shifted)', async () => {
    const writer = new RedisStreamWriter(answering(['e1', 1, 1000, 0, 'e2', 1, 1000]));
    const results = await writer.appendBatches('p', ['a', 'b'].map(batch));
    expect(results.map(outcome)).toEqual([
      'error: appendMany answered 7 items for 2 user(s), 4 per user expected',
      'error: appendMany answered 7 items for 2 user(s), 4 per user expected',
    ]);
  });
});
