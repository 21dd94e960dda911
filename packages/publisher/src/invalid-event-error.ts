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
 * Checks an event and its user id where they enter the bus, so a malformed
 * event never gets a cursor (and never fails later, on every replay). Returns
 * the event as the schema normalises it.
 */
export function validatePublication(userId: string, event: unknown): AppEvent {
  // UserIdSchema's bounds, checked without a zod parse per event.
  if (typeof userId !== 'string' || userId.length < USER_ID_MIN || userId.length > USER_ID_MAX) {
    throw new InvalidEventError('user id must be 1 to 128 characters');
  }
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
