import {
  type AppEvent,
  AppEventSchema,
  exceedsValueDepth,
  type FrameIssue,
  protocolDefaults,
  toFrameIssues,
  UserIdSchema,
} from '@livebus/protocol';
import { slotOf, userSlot } from './redis/cluster-slot';

/**
 * Local error: an event refused before it got a cursor (unknown type, data of
 * the wrong shape, too deep, too large for a frame, bad user id). Carries the issues, for the caller.
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
 * Bytes the stored frame adds to the event's JSON at most: `appendAndNotify` writes
 * `{"type":"event","cursor":"<epoch>:<offset>","ts":<ms>,` then the event's JSON without its
 * `{`. Counted with the longest epoch, offset and time a frame can carry (see
 * `readStoredFramePosition`), so that an event accepted here fits whatever cursor it gets.
 */
const FRAME_ENVELOPE_BYTES =
  `{"type":"event","cursor":"${'e'.repeat(64)}:${'9'.repeat(15)}","ts":${'9'.repeat(15)},`.length - 1;

/**
 * Refuses an event whose frame clients would refuse (over the protocol's `maxFrameBytes`, in
 * bytes of UTF-8): stored, it would never reach them, and trimming to the retention's bytes
 * could empty the user's stream to keep it.
 */
function checkFrameSize(text: string): void {
  const max = protocolDefaults.maxFrameBytes;
  // UTF-8 takes at most 3 bytes per UTF-16 unit: most events need no exact count.
  if (text.length * 3 + FRAME_ENVELOPE_BYTES <= max) return;
  const bytes = Buffer.byteLength(text) + FRAME_ENVELOPE_BYTES;
  if (bytes > max) {
    throw new InvalidEventError(
      `event too large: its frame would be up to ${bytes} bytes, which exceeds the ${max} bytes clients accept`,
    );
  }
}

/**
 * Checks an event and its user id where they enter the bus, so a malformed
 * event never gets a cursor (and never fails later, on every replay). Returns
 * the event as the schema normalises it. An event whose frame would exceed the
 * protocol's `maxFrameBytes` is refused too.
 */
export function validatePublication(userId: string, event: unknown): AppEvent {
  return validatedJson(userId, event).event;
}

/**
 * {@link validatePublication}, with the event's JSON (`JSON.stringify` of the event returned),
 * made once for the size check: the outbox counts its bytes and the writer sends it as is.
 * @internal
 */
export function validatedJson(userId: string, event: unknown): { event: AppEvent; json: string } {
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
  const valid = parsed.data as AppEvent;
  const json = JSON.stringify(valid);
  checkFrameSize(json);
  return { event: valid, json };
}

/**
 * Refuses a fence the append cannot use: a key outside the user's hash slot (the script's keys
 * must share one: `CROSSSLOT` on a Cluster, while a standalone Redis takes it, so the mistake
 * would show only in production), or a key or value that is not a string.
 * @internal
 */
export function checkFence(userId: string, fence: { key: unknown; value: unknown }): void {
  if (typeof fence.key !== 'string') throw new InvalidEventError('fence.key must be a string (a key of the user)');
  if (typeof fence.value !== 'string') throw new InvalidEventError('fence.value must be a string');
  const slot = slotOf(fence.key);
  const user = userSlot(userId);
  if (slot !== user) {
    throw new InvalidEventError(
      `fence.key must be in the user's hash slot (a key with the user's hash tag, as fleetUserKeys(userId).lease): its slot is ${slot}, the user's ${user}`,
    );
  }
}
