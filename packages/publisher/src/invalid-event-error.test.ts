import { type AppEvent, protocolDefaults, UserIdSchema } from '@livebus/protocol';
import { InvalidEventError, validatePublication } from './invalid-event-error';
import type { RedisClient } from './redis/client';
import { RedisStreamWriter } from './redis-stream-writer';

const event = { event: 'task.progress_update', data: { task_id: 't1', status: 'running', progress: 10 } };

/** Whether the publisher accepts `userId` (the event itself being valid). */
function accepted(userId: unknown): boolean {
  try {
    validatePublication(userId as string, event);
    return true;
  } catch (error) {
    if (!(error instanceof InvalidEventError)) throw error;
    expect(error.message).toBe('user id must be 1 to 128 characters');
    return false;
  }
}

describe('validatePublication: the user id', () => {
  it.each([
    ['a single character', 'a'],
    ['128 ASCII characters', 'a'.repeat(128)],
    ['100 emoji (200 UTF-16 units, 100 characters)', '😀'.repeat(100)],
    ['128 emoji', '😀'.repeat(128)],
    ['one emoji', '😀'],
  ])('accepts %s, as UserIdSchema does', (_, userId) => {
    expect(UserIdSchema.safeParse(userId).success).toBe(true);
    expect(accepted(userId)).toBe(true);
  });

  it.each([
    ['an empty id', ''],
    ['129 ASCII characters', 'a'.repeat(129)],
    ['129 emoji', '😀'.repeat(129)],
    ['a number', 42],
    ['undefined', undefined],
  ])('refuses %s, as UserIdSchema does', (_, userId) => {
    expect(UserIdSchema.safeParse(userId).success).toBe(false);
    expect(accepted(userId)).toBe(false);
  });
});

describe('validatePublication: the size of the event frame', () => {
  const max = protocolDefaults.maxFrameBytes;
  const notice = (message: string) => ({ event: 'session.notice', data: { level: 'info', message } });
  /** The longest frame the event can become: the stored frame's envelope with the longest cursor and time. */
  const longestFrameBytes = (e: object) =>
    Buffer.byteLength(`{"type":"event","cursor":"${'e'.repeat(64)}:${'9'.repeat(15)}","ts":${'9'.repeat(15)},`) +
    Buffer.byteLength(JSON.stringify(e)) -
    1;
  const sizedTo = (bytes: number, char = 'x') => {
    const overhead = longestFrameBytes(notice(''));
    return notice(char.repeat((bytes - overhead) / Buffer.byteLength(char)));
  };

  it('accepts an event whose frame is at most maxFrameBytes, whatever its cursor', () => {
    const event = sizedTo(max);
    expect(longestFrameBytes(event)).toBe(max);
    expect(validatePublication('u1', event)).toEqual(event);
  });

  it.each([
    ['ASCII', 'x', 1],
    ['two-byte characters (UTF-8 bytes, not characters, count)', 'é', 2],
  ])('refuses with InvalidEventError an event whose frame would exceed maxFrameBytes: %s', (_, char, width) => {
    const event = sizedTo(max - (max % width) + width, char);
    expect(longestFrameBytes(event)).toBeGreaterThan(max);
    expect(() => validatePublication('u1', event)).toThrow(InvalidEventError);
    expect(() => validatePublication('u1', event)).toThrow(`exceeds the ${max} bytes clients accept`);
  });
});

describe('RedisStreamWriter.appendMany: a fence', () => {
  it("refuses one whose key is not in the user's hash slot with InvalidEventError, before Redis is touched", async () => {
    const writer = new RedisStreamWriter({} as RedisClient);
    await expect(
      writer.appendMany([{ userId: 'u1', event: event as AppEvent, fence: { key: 'lb:{u2}:l', value: 'gw|1' } }]),
    ).rejects.toThrow(/fence\.key must be in the user's hash slot/);
    await expect(
      writer.appendMany([
        { userId: 'u1', event: event as AppEvent, fence: { key: 'lb:{u1}:l', value: null as never } },
      ]),
    ).rejects.toThrow(InvalidEventError);
  });
});
