import {
  type AppEvent,
  AppEventSchema,
  exceedsValueDepth,
  type FrameIssue,
  protocolDefaults,
  toFrameIssues,
  UserIdSchema,
} from '@livebus/protocol';

/**
 * Local error: an event refused before it got a cursor (unknown type, data of
 * the wrong shape, too deep, bad user id). Carries the issues, for the caller.
 */
export class InvalidEventError extends Error {
  override readonly name = 'InvalidEventError';
  readonly issues: readonly FrameIssue[];
  constructor(message: string, issues: readonly FrameIssue[] = []) {
    super(message);
    this.issues = issues;
  }
}

const USER_ID_MIN = UserIdSchema.minLength ?? 1;
const USER_ID_MAX = UserIdSchema.maxLength ?? Number.POSITIVE_INFINITY;

/**
 * UserIdSchema's verdict, without a zod parse for nearly every id: zod counts code points,
 * one or two UTF-16 units each, so a length in units within [2 * min, max] is within the
 * bounds in code points too; anything else (emoji near the bound, non-strings) asks zod.
 */
function userIdAccepted(userId: unknown): boolean {
  if (typeof userId !== 'string') return false;
  const n = userId.length;
  if (n >= 2 * USER_ID_MIN && n <= USER_ID_MAX) return true;
  return UserIdSchema.safeParse(userId).success;
}

/**
 * Checks an event and its user id where they enter the bus, so a malformed
 * event never gets a cursor (and never fails later, on every replay). Returns
 * the event as the schema normalises it.
 */
export function validatePublication(userId: string, event: unknown): AppEvent {
  if (!userIdAccepted(userId)) throw new InvalidEventError('user id must be 1 to 128 characters');
  if (exceedsValueDepth(event, protocolDefaults.maxJsonDepth)) {
    throw new InvalidEventError(`event nested deeper than ${protocolDefaults.maxJsonDepth} levels`);
  }
  const parsed = AppEventSchema.safeParse(event);
  if (!parsed.success) {
    const issues = toFrameIssues(parsed.error);
    const first = issues[0];
    throw new InvalidEventError(`invalid event${first ? `: ${first.path || 'event'}: ${first.message}` : ''}`, issues);
  }
  return parsed.data as AppEvent;
}
