/**
 * The fleet's Redis layout: every key and channel the gateway, the task worker and
 * the publisher use, built here and nowhere else (docs/redis-keys.md lists them with
 * their types and expiries). The names are a data format: operators and dashboards
 * look for them (`registry:unified:*`), and instances of different versions share
 * them during a rolling upgrade, so a name never changes here without a migration.
 */

/** Prefix of the fleet's own keys (streams, presence, leases, instances). */
export const FLEET_KEY_PREFIX = 'lb:';

/** Prefix of the registry keys, which operators already know (`registry:user:*`, `registry:unified:*`). */
export const REGISTRY_KEY_PREFIX = 'registry:';

/**
 * The hash tag of a user: every key of a user must hash to one slot (a Lua
 * script touches them together), so `{` and `}` in a user id are escaped:
 * unescaped, `}x` would make an empty tag and scatter the keys over slots.
 * `%` is escaped too, which keeps the mapping one-to-one.
 */
const TAG_SPECIAL = /[%{}]/;

export function userTag(userId: string): string {
  // Most ids have none of the escaped characters: no replace (and no new string) for them.
  if (!TAG_SPECIAL.test(userId)) return userId;
  return userId.replace(/[%{}]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** The Redis keys and channel of one user's event stream. */
export interface UserKeys {
  /** Redis Stream of the user's events, retained for resume; entry id = offset. */
  stream: string;
  /** Hash: `e` epoch, `o` offset of the last event, `b` bytes retained in the stream, `w` replication id of the last writer. */
  meta: string;
  /** Sharded pub/sub channel (SPUBLISH / SSUBSCRIBE) carrying each stored event as JSON. */
  channel: string;
}

/**
 * Keys of a user's stream: `lb:{<uid>}:s`, `lb:{<uid>}:m`, channel `lb:{<uid>}:n`, all in one hash slot.
 * The `appendMany` script makes the channel from the stream key (its last letter `s` made `n`).
 */
export function userKeys(userId: string): UserKeys {
  const base = `${FLEET_KEY_PREFIX}{${userTag(userId)}}`;
  return { stream: `${base}:s`, meta: `${base}:m`, channel: `${base}:n` };
}

/**
 * Every other Redis key the fleet keeps about one user. They all carry the user id
 * as a Redis Cluster hash tag (`{uid}`), the one of {@link userKeys}, so they live in
 * one slot and a single Lua script may touch any of them together (detach decision,
 * presence pruning the legacy registry).
 */
export interface FleetUserKeys {
  /** Presence hash: session id -> session entry JSON. */
  readonly presence: string;
  /** Presence expiry index: zset of session id scored by expiry (Redis server ms). */
  readonly presenceExpiry: string;
  /** Lease value `owner|token` (PX ttl). */
  readonly lease: string;
  /** Lease fencing counter: the last token issued. */
  readonly leaseFence: string;
  /** Listener watermarks: hash listener name -> read time (ns) of the last published snapshot. */
  readonly listenerMarks: string;
  /**
   * Documents each listener delivered as present: hash `<listener> <path>` -> update time (ns),
   * so a new owner can tell a document deleted during a takeover (bounded per listener).
   */
  readonly listenerDocs: string;
  /** Jobs the user watches with WORKFLOW.watch, fleet-wide: set of job ids. */
  readonly workflowWatches: string;
  /**
   * Detach claim: the instance that won the cleanup of the user's last departure
   * (PX the claim TTL; deleted by the next presence add).
   */
  readonly detachClaim: string;
  /** Legacy registry hash: session id -> RegistrySession JSON. */
  readonly registrySessions: string;
  /** Unified registry document JSON. */
  readonly registryUnified: string;
}

/** Key prefixes of {@link fleetUserKeys}; tests give their own to share one Redis. */
export interface UserKeyPrefixes {
  /** Prefix of the fleet's own keys (presence, lease). @default {@link FLEET_KEY_PREFIX} */
  fleet?: string;
  /** Prefix of the registry keys. @default {@link REGISTRY_KEY_PREFIX} */
  registry?: string;
}

/** Thrown for a user id that cannot name a Redis key (empty, so no hash tag). */
export class UserKeyError extends Error {
  override readonly name = 'UserKeyError';
  readonly code = 'invalid_user_id';
}

/**
 * The fleet keys of one user. An empty id is refused: `{}` is no hash tag, so the
 * keys would scatter over slots.
 */
export function fleetUserKeys(userId: string, prefixes: UserKeyPrefixes = {}): FleetUserKeys {
  if (userId.length === 0) throw new UserKeyError('user id must not be empty');
  const fleet = prefixes.fleet ?? FLEET_KEY_PREFIX;
  const registry = prefixes.registry ?? REGISTRY_KEY_PREFIX;
  const tag = `{${userTag(userId)}}`;
  return {
    presence: `${fleet}${tag}:p`,
    presenceExpiry: `${fleet}${tag}:pz`,
    lease: `${fleet}${tag}:l`,
    leaseFence: `${fleet}${tag}:lf`,
    listenerMarks: `${fleet}${tag}:lw`,
    listenerDocs: `${fleet}${tag}:ld`,
    workflowWatches: `${fleet}${tag}:wf`,
    detachClaim: `${fleet}${tag}:dc`,
    registrySessions: `${registry}user:${tag}`,
    registryUnified: `${registry}unified:${tag}`,
  };
}

/** Keys of the fleet's instance list, on slots of their own (not a user's). */
export const instanceKeys = {
  /** Zset of instance ids scored by expiry (Redis server ms). */
  list: (fleetPrefix: string = FLEET_KEY_PREFIX): string => `${fleetPrefix}instances`,
  /** One instance's info JSON (PX its TTL). */
  info: (instanceId: string, fleetPrefix: string = FLEET_KEY_PREFIX): string =>
    `${fleetPrefix}instance:{${instanceId}}`,
  /**
   * One instance's liveness key while it runs with listener failover on: the process's
   * incarnation id, PX `LISTENER_FAILOVER_MS`, rewritten every quarter of it.
   */
  alive: (instanceId: string, fleetPrefix: string = FLEET_KEY_PREFIX): string => `${fleetPrefix}alive:{${instanceId}}`,
  /** Plain pub/sub channel of control messages to one instance (rare and small, so not sharded). */
  channel: (instanceId: string): string => `${FLEET_KEY_PREFIX}ctl:${instanceId}`,
} as const;

/**
 * The Redis key prefix of everything tasks keep: BullMQ's queue keys (`{lbq}:livebus-tasks:*`),
 * task snapshots and worker heartbeats. The braces are a Redis Cluster hash tag, so every
 * key lands in one slot: BullMQ's Lua scripts touch several keys of a queue at once, which
 * a cluster only allows within one slot.
 */
export const TASK_KEY_PREFIX = '{lbq}';

/** The BullMQ queue name. */
export const TASK_QUEUE_NAME = 'livebus-tasks';

/** The hash holding one task's snapshot. */
export const taskKey = (taskId: string): string => `${TASK_KEY_PREFIX}:task:${taskId}`;

/** Sorted set of worker ids scored by their last heartbeat (ms). */
export const workersKey = `${TASK_KEY_PREFIX}:workers`;
