// A hand-written check of the welcome frame, the first frame a client receives on every connection:
// the same verdicts as `WelcomeFrameSchema` (zod) on any value JSON.parse returns, without the
// JSON Schema checker's walk (a client parses one welcome per connect). Only acceptance is decided
// here: a value it refuses goes to the checker, which gives its own verdict and issue (refusing
// more than zod is safe, accepting more is not). The welcome comes from the gateway but is still
// untrusted input: every field the schema constrains is checked. `welcome-check.test.ts` holds the
// schema this was written for (a change to WelcomeFrameSchema fails there until this follows) and
// compares verdicts with zod's on many valid and invalid welcomes. Written short: it is in the
// browser build.
import type { WelcomeFrame } from './frames';
import { CURSOR, isSessionId, isUserId } from './hello-check';
import { PROTOCOL_VERSION } from './version';

/** An object as zod's strict objects take it apart (not null, not an array) with no key but `keys`. */
function strict(v: unknown, keys: string[]): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  // Every enumerable key, as zod's strict object reads them (for...in).
  for (const key in v) if (!keys.includes(key)) return false;
  return true;
}

const WELCOME_KEYS = ['type', 'v', 'session_id', 'user_id', 'instance_id', 'heartbeat', 'resume'];
const HEARTBEAT_KEYS = ['ping_interval_ms', 'ping_timeout_ms'];
const RESUME_KEYS = ['status', 'cursor', 'replayed'];

/** `z.number().int().nonnegative()`, or `.positive()` when `min` is 1. */
const int = (v: unknown, min: number) => Number.isSafeInteger(v) && (v as number) >= min;

/**
 * Whether `value` (as JSON.parse returned it) is a welcome that `WelcomeFrameSchema` accepts: a
 * `type` of "welcome", this protocol version, a session id and user id within their bounds, an
 * instance id, the heartbeat's two positive integers, the resume's status, cursor and count, and
 * no other key at any level.
 */
export function isWelcomeFrame(value: unknown): value is WelcomeFrame {
  // The type first: other frames are told apart without a look at their keys.
  const o = value as Record<string, unknown> | null | undefined;
  if (o?.type !== 'welcome' || !strict(o, WELCOME_KEYS)) return false;
  const { heartbeat: h, resume: r } = o;
  return (
    o.v === PROTOCOL_VERSION &&
    isSessionId(o.session_id) &&
    isUserId(o.user_id) &&
    typeof o.instance_id === 'string' &&
    strict(h, HEARTBEAT_KEYS) &&
    int(h.ping_interval_ms, 1) &&
    int(h.ping_timeout_ms, 1) &&
    strict(r, RESUME_KEYS) &&
    (r.status === 'fresh' || r.status === 'resumed' || r.status === 'gap') &&
    typeof r.cursor === 'string' &&
    CURSOR.test(r.cursor) &&
    int(r.replayed, 0)
  );
}
