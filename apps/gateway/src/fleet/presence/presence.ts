/** One live session of a user, as the fleet sees it. */
export interface SessionEntry {
  /** Session id, unique per user; a reconnect may reuse it on another instance. */
  sessionId: string;
  /** The gateway instance that holds the WebSocket. */
  instanceId: string;
  /** The client's route (informational). */
  route: string;
  /** When the session connected, ms since the epoch on the holding instance's clock (informational only: no decision reads it). */
  connectedAt: number;
}

/** Options of {@link Presence.add}. */
export interface PresenceAddOptions {
  /**
   * Session limit: the add is refused when the user already has this many live
   * sessions other than `entry.sessionId`. Checked and written atomically, so
   * concurrent adds on several instances never exceed it. `undefined` or 0: no limit.
   */
  maxSessions?: number;
  /**
   * This instance writes its own session again (its entry expired during a stall: the fleet
   * heartbeat's re-announce). Written only when no other instance holds the session id now
   * (a reconnect took it over: this instance's socket is the stale one), and nobody is told.
   * Held elsewhere: refused, with `heldElsewhere`.
   */
  reannounce?: boolean;
  /**
   * With {@link reannounce}: the session's registry entry (`RegistrySession` JSON) to write back
   * in the same step when its id has none (the stall that expired the presence entry pruned it
   * with it). Stores whose registry is not tied to presence ignore it.
   */
  registration?: string;
}

/** What {@link Presence.add} did. */
export type PresenceAddResult =
  | {
      refused: false;
      /** The entry this one replaced: same session id, possibly on another instance (which should close its socket). */
      replaced?: SessionEntry;
      /**
       * The store already told the instance holding `replaced` to close its socket (the
       * Redis store does, in the same atomic step, with the instance channel's `replace`
       * message). Unset: the caller tells it, when it is another instance.
       */
      holderTold?: boolean;
      /** The user's live sessions after the add. */
      count: number;
      /**
       * The registry entry of the session id (`RegistrySession` JSON) after the add, where the
       * store keeps the registry with presence (Redis): what a re-announce writes back.
       */
      registration?: string | undefined;
    }
  | {
      /** The session limit was reached, or (a re-announce) another instance holds the session; nothing was written. */
      refused: true;
      /** A re-announce found the session held by another instance. */
      heldElsewhere?: true;
      /** The user's live sessions (unchanged). */
      count: number;
    };

/** An instance's traffic as it announces it (absent from gateways that predate it). */
export interface InstanceThroughput {
  /** Events the bus handed to its users per second (last 10 s). */
  eventsInPerS?: number;
  /** Event frames it wrote to sockets per second (last 10 s). */
  eventsOutPerS?: number;
  /** Delivery latency, origin to socket, over the last minute (null: nothing delivered). */
  deliveryP50Ms?: number | null;
  deliveryP99Ms?: number | null;
}

/** One gateway instance, as it announces itself on every heartbeat. */
export interface InstanceInfo extends InstanceThroughput {
  id: string;
  /** Sessions it holds. */
  sessions: number;
  /** Users it holds sessions of. */
  users: number;
  /** ms since the epoch. */
  startedAt: number;
  version: string;
  /** When it announced this, ms since the epoch on its own clock. Set by {@link Presence.announce}. */
  lastSeen: number;
}

/**
 * Port: the session directory of the fleet, i.e. which instance holds which
 * sessions of a user. Every entry expires `instanceTtlMs` after its last add or
 * {@link refresh}, so the sessions of a dead (SIGKILLed) instance disappear by
 * themselves. Implementations: {@link import('./memory-presence').MemoryPresence}
 * (embedded default, one instance) and {@link import('./redis-presence').RedisPresence}
 * (standalone Redis or Cluster); both pass presence.contract.ts.
 */
export interface Presence {
  /** Records a session held by `entry.instanceId`, or refuses it (see {@link PresenceAddOptions.maxSessions}). */
  add(userId: string, entry: SessionEntry, options?: PresenceAddOptions): Promise<PresenceAddResult>;
  /**
   * Removes the session if `instanceId` still holds it. Fenced: when a reconnect
   * moved the session id to another instance, that newer entry is kept and this
   * returns false.
   */
  remove(userId: string, sessionId: string, instanceId: string): Promise<boolean>;
  /** The user's live sessions, oldest `connectedAt` first. Expired entries are never returned. */
  sessions(userId: string): Promise<SessionEntry[]>;
  /**
   * Heartbeat of `instanceId`: extends the expiry of the listed sessions' entries held by
   * it (one atomic step per user). Its entries that are not listed are not extended: the
   * entry of a session that closed while its remove failed expires within the TTL, even
   * while the instance holds other sessions of the user. Resolves with the users of whom
   * a listed session has no entry of this instance (it expired: the heartbeat came later
   * than the TTL, and another instance may have seen it absent): the caller adds them again.
   * A user whose step fails (its node away, a failover in progress) does not stop the others:
   * once every user was tried, it rejects with a {@link PresenceRefreshError} carrying the
   * users found lost all the same.
   */
  refresh(instanceId: string, held: Iterable<HeldSessions>): Promise<string[]>;
  /** Announces an instance for `ttlMs` (call it on every heartbeat); `lastSeen` is set to now. */
  announce(info: Omit<InstanceInfo, 'lastSeen'>, ttlMs: number): Promise<void>;
  /** Instances whose announcement has not expired, by id. */
  instances(): Promise<InstanceInfo[]>;
  /** Forgets an instance now (graceful shutdown). */
  retire(instanceId: string): Promise<void>;
}

/** A user and the ids of their sessions an instance serves, as its heartbeat lists them ({@link Presence.refresh}). */
export type HeldSessions = readonly [userId: string, sessionIds: readonly string[]];

/** Options shared by the presence implementations. */
export interface PresenceOptions {
  /**
   * How long an entry lives after its last add or refresh: the sessions of an
   * instance that stops heartbeating disappear within this. Heartbeat well inside
   * it (a third is customary).
   * @default 30_000
   */
  instanceTtlMs?: number;
}

/** @internal Default of {@link PresenceOptions.instanceTtlMs}. */
export const DEFAULT_INSTANCE_TTL_MS = 30_000;

/** The longest one step of a heartbeat (one user's refresh) may go unanswered (a frozen node) before it counts as failed. */
const STEP_TIMEOUT_MS = 5_000;

/**
 * @internal How long one step of a heartbeat may go unanswered, for entries living
 * `instanceTtlMs`: at most 5 s, and well inside a beat period (a third of the TTL).
 */
export function heartbeatStepTimeoutMs(instanceTtlMs: number): number {
  return Math.max(100, Math.min(STEP_TIMEOUT_MS, Math.floor(instanceTtlMs / 6)));
}

/** Sort order of {@link Presence.sessions}: oldest first, ties by session id so the order is stable. */
export function bySessionAge(a: SessionEntry, b: SessionEntry): number {
  return a.connectedAt - b.connectedAt || (a.sessionId < b.sessionId ? -1 : a.sessionId > b.sessionId ? 1 : 0);
}

/**
 * A heartbeat's refresh in which some users' steps failed ({@link Presence.refresh}); the others
 * were refreshed. `lost` holds the users found lost among them, to be added again as usual.
 */
export class PresenceRefreshError extends Error {
  constructor(
    readonly failedUsers: number,
    readonly lost: readonly string[],
    cause: unknown,
  ) {
    super(`${failedUsers} user(s) could not be refreshed: ${String(cause)}`, { cause });
    this.name = 'PresenceRefreshError';
  }
}
