import { UserIdSchema } from '@livebus/protocol';
import { InvalidEventError, validatePublication } from './invalid-event-error';

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
