// A hand-written check of the welcome frame, the first frame a client receives on every connection:
// the same verdicts as `WelcomeFrameSchema` (zod) on any value JSON.parse returns, without the
// JSON Schema checker's walk (a client parses one welcome per connect). Only acceptance is decided
// here: a value it refuses goes to the checker, which gives its own verdict and issue (refusing
// more than zod is safe, accepting more is not). The welcome comes
// from the gateway but is still untrusted input: every field the schema constrains is checked.
// `welcome-check.test.ts` holds the schema this was written for (a change to WelcomeFrameSchema
// fails there until this follows) and compares verdicts with zod's on many valid and invalid welcomes.
import type { WelcomeFrame } from './frames';
import { CURSOR, isSessionId, isUserId } from './hello-check';
import { PROTOCOL_VERSION } from './version';

/** An object as zod's strict objects take it apart: not null, not an array. */
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** `z.number().int().positive()`. */
const isPositiveInt = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && v > 0;

/** `z.number().int().nonnegative()`. */
const isNonNegativeInt = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** Every enumerable key of `o` (as zod's strict object reads them: for...in) is one of `keys`. */
function onlyKeys(o: Record<string, unknown>, keys: readonly string[]): boolean {
  for (const key in o) if (!keys.includes(key)) return false;
  return true;
}

const WELCOME_KEYS = ['type', 'v', 'session_id', 'user_id', 'instance_id', 'heartbeat', 'resume'] as const;
const HEARTBEAT_KEYS = ['ping_interval_ms', 'ping_timeout_ms'] as const;
const RESUME_KEYS = ['status', 'cursor', 'replayed'] as const;

/**
 * Whether `value` (as JSON.parse returned it) is a welcome that `WelcomeFrameSchema` accepts: a
 * `type` of "welcome", this protocol version, a session id and user id within their bounds, an
 * instance id, the heartbeat's two positive integers, the resume's status, cursor and count, and
 * no other key at any level.
 */
export function isWelcomeFrame(value: unknown): value is WelcomeFrame {
  if (!isObject(value) || value.type !== 'welcome' || value.v !== PROTOCOL_VERSION) return false;
  if (!isSessionId(value.session_id) || !isUserId(value.user_id) || typeof value.instance_id !== 'string') return false;
  const heartbeat = value.heartbeat;
  if (!isObject(heartbeat) || !isPositiveInt(heartbeat.ping_interval_ms) || !isPositiveInt(heartbeat.ping_timeout_ms)) {
    return false;
  }
  const resume = value.resume;
  if (!isObject(resume)) return false;
  const status = resume.status;
  if (status !== 'fresh' && status !== 'resumed' && status !== 'gap') return false;
  if (typeof resume.cursor !== 'string' || !CURSOR.test(resume.cursor) || !isNonNegativeInt(resume.replayed)) {
    return false;
  }
  return onlyKeys(value, WELCOME_KEYS) && onlyKeys(heartbeat, HEARTBEAT_KEYS) && onlyKeys(resume, RESUME_KEYS);
}
