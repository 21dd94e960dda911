import { userTag } from '@livebus/publisher';
/**
 * Every Redis key the fleet keeps about one user, in one place. They all carry the
 * user id as a Redis Cluster hash tag (`{uid}`), so they live in one slot and a
 * single Lua script may touch any of them together (detach decision, presence
 * pruning the legacy registry). docs/redis-keys.md lists them with their TTLs.
 */
export interface UserKeys {
  /** Presence hash: session id -> {@link import('../fleet/presence/presence').SessionEntry} JSON. */
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

/** Key prefixes of {@link userKeys}. */
export interface UserKeyPrefixes {
  /** Prefix of the fleet's own keys (presence, lease). @default 'lb:' */
  fleet?: string;
  /** Prefix of the registry keys, which operators already know. @default 'registry:' */
  registry?: string;
}

/** Thrown for a user id that cannot name a Redis key (empty, so no hash tag). */
export class UserKeyError extends Error {
  override readonly name = 'UserKeyError';
}

/**
 * The keys of one user. An empty id is refused: `{}` is no hash tag, so the keys
 * would scatter over slots. Braces in an id are escaped by the publisher's
 * `userTag`, the one tagging rule for every key of a user, event streams included.
 */
export function userKeys(userId: string, prefixes: UserKeyPrefixes = {}): UserKeys {
  if (userId.length === 0) throw new UserKeyError('user id must not be empty');
  const fleet = prefixes.fleet ?? 'lb:';
  const registry = prefixes.registry ?? 'registry:';
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
