// A hand-written check of the hello frame, the first frame of every connection: the same verdicts
// as `HelloFrameSchema` (zod) on any value JSON.parse returns, without zod's work and objects per
// hello (about 1.5 KB and 10 µs of a hello's server-side cost). Only acceptance is decided here:
// a value it refuses goes to zod, which refuses it with its issues. `hello-check.test.ts` holds
// the schema this was written for (a change to HelloFrameSchema fails there until this follows)
// and compares verdicts with zod's on many valid and invalid hellos.
import type { HelloFrame } from './frames';

/** `CursorSchema`'s pattern. */
export const CURSOR = /^[0-9A-Za-z_-]{1,32}:[0-9]{1,16}$/;

/** Whether `value` is a cursor that `CursorSchema` accepts (`<epoch>:<offset>`), without zod. */
export const isCursor = (value: unknown): value is string => typeof value === 'string' && CURSOR.test(value);

/** A string's length as zod counts it: code points, a lone surrogate counting one. */
function codePointLength(s: string): number {
  let count = s.length;
  for (let i = 0; i < s.length - 1; i++) {
    if ((s.charCodeAt(i) & 0xfc00) === 0xd800 && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      count--;
      i++;
    }
  }
  return count;
}

/**
 * `z.string().min(min).max(max)`: UTF-16 units decide unless surrogate pairs could move the
 * count across a bound (a code point is one or two units), and only then are code points counted.
 */
function stringWithin(v: unknown, min: number, max: number): boolean {
  if (typeof v !== 'string') return false;
  const units = v.length;
  if (units < min) return false;
  if (units < 2 * min && codePointLength(v) < min) return false;
  return units <= max || codePointLength(v) <= max;
}

/** Whether `value` is a user id that `UserIdSchema` accepts (a string of 1 to 128 code points), without zod. */
export const isUserId = (value: unknown): value is string => stringWithin(value, 1, 128);

/**
 * Whether `value` is a session id that `SessionIdSchema` accepts: the bounds of a user id (1 to
 * 128 code points), so the same function (the browser build carries one).
 */
export const isSessionId: (value: unknown) => value is string = isUserId;

/**
 * Whether `value` (as JSON.parse returned it) is a hello that `HelloFrameSchema` accepts: a
 * `type` of "hello", a `v` that is a positive safe integer, the optional fields within their
 * bounds, and no other key. An optional field that is present but undefined counts as absent,
 * as in zod (JSON has no undefined).
 */
export function isHelloFrame(value: unknown): value is HelloFrame {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const o = value as Record<string, unknown>;
  if (o.type !== 'hello') return false;
  const v = o.v;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) return false;
  // Every enumerable key, as zod's strict object reads them (for...in): one it does not know refuses.
  for (const key in o) {
    const x = o[key];
    switch (key) {
      case 'type':
      case 'v':
        break;
      case 'token':
        if (x !== undefined && !stringWithin(x, 1, 8192)) return false;
        break;
      case 'user_id':
        if (x !== undefined && !isUserId(x)) return false;
        break;
      case 'session_id':
        if (x !== undefined && !isSessionId(x)) return false;
        break;
      case 'route':
        if (x !== undefined && !stringWithin(x, 0, 512)) return false;
        break;
      case 'last_cursor':
        if (x !== undefined && !(typeof x === 'string' && CURSOR.test(x))) return false;
        break;
      case 'app_ping':
        if (x !== undefined && typeof x !== 'boolean') return false;
        break;
      default:
        return false;
    }
  }
  return true;
}
