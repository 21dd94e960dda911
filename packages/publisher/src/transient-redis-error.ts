import { isConnectionError } from './connection-error';

// Replies a Redis Cluster gives while a slot changes hands (a failover, a
// resharding, a replica still catching up): the same command succeeds once the
// topology settles. NOREPLICAS is `min-replicas-to-write` waiting for a replica. BUSY: a
// script (or function) has run past `busy-reply-threshold` and Redis answers nothing else
// until it ends or is killed. WRONGPASS / NOAUTH: Redis does not take the client's password (yet):
// during a rotation the server and the clients change over at different times, and ioredis
// authenticates again at each reconnect, so a retry succeeds once both sides agree.
const TRANSIENT_REPLY =
  /^(?:MOVED|ASK|CLUSTERDOWN|TRYAGAIN|MASTERDOWN|LOADING|READONLY|NOREPLICAS|BUSY|WRONGPASS|NOAUTH)\b/;
// What ioredis itself says while it cannot reach the master of a slot, or while a slot moves:
// an auto-pipeline is gathered for one node, and when the slot map read meanwhile puts one of
// its keys on another (a resharding), the whole pipeline is refused with "All keys in the
// pipeline should belong to the same slots allocation group" before anything is sent.
const TRANSIENT_CLIENT =
  /^(?:Connection is closed|Command aborted due to connection close|Node is disconnected|Cluster isn't ready|None of startup nodes is available|Failed to refresh slots cache|Socket timeout|All keys in the pipeline should belong to the same slots allocation group)/;
// ioredis' Cluster gives up after `maxRedirections` redirections or retries,
// each of them a transient condition, and names only the last one.
const TOO_MANY_REDIRECTIONS = /^Too many Cluster redirections\. Last error: (?:\w*Error: )?(.*)$/s;

/** `WRONGPASS` / `NOAUTH`: Redis does not take the client's password (a rotation, or a wrong one). */
export function isPasswordRefusal(error: unknown): boolean {
  return error instanceof Error && /^(?:WRONGPASS|NOAUTH)\b/.test(error.message);
}

/**
 * True when a Redis error is a passing condition a retry of the same command
 * outlives: the connection was lost, or a Redis Cluster is failing over or
 * moving a slot (`CLUSTERDOWN`, `TRYAGAIN`, `MOVED`/`ASK`, ioredis' "Too many
 * Cluster redirections", a slot without a reachable master), busy running a
 * long script (`BUSY`), or refusing the password (`WRONGPASS`, `NOAUTH`: a
 * rotation not yet on both sides; a password that stays wrong fails every retry,
 * as an address that stays wrong does). False for a real refusal a retry cannot
 * fix (wrong type, a script error, out of memory, a bad argument, an ACL's `NOPERM`).
 *
 * The publisher's outbox retries what this accepts (in order per user) and
 * rejects the rest with `redis_error`; the gateway uses it to tell a retryable
 * `unavailable` from an internal error.
 */
export function isTransientRedisError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (isConnectionError(error)) return true;
  const message = error.message;
  const last = TOO_MANY_REDIRECTIONS.exec(message);
  // Each redirection ioredis counted was transient, but the last may be what a settled slot answered.
  if (last) return isTransientMessage(last[1] ?? '') || !looksLikeRefusal(last[1] ?? '');
  return isTransientMessage(message);
}

function isTransientMessage(message: string): boolean {
  return TRANSIENT_REPLY.test(message) || TRANSIENT_CLIENT.test(message);
}

// A Redis error reply starts with an upper-case code (ERR, WRONGTYPE, OOM, NOSCRIPT, BUSYKEY...).
function looksLikeRefusal(message: string): boolean {
  return /^[A-Z][A-Z_]+\b/.test(message);
}
