import {
  bySessionAge,
  DEFAULT_INSTANCE_TTL_MS,
  type HeldSessions,
  type InstanceInfo,
  type Presence,
  type PresenceAddOptions,
  type PresenceAddResult,
  type PresenceOptions,
  type SessionEntry,
} from './presence';

/** The registry kept with the embedded presence: told when a session leaves and comes back. */
export interface LeavingSessions {
  sessionLeft(userId: string, sessionId: string, graceMs: number): void;
  sessionBack(userId: string, sessionId: string): void;
}

/** Options of {@link MemoryPresence}. */
export interface MemoryPresenceOptions extends PresenceOptions {
  /** Clock (tests). @default Date.now */
  now?: () => number;
  /**
   * The registry whose entries go with the sessions that leave (the embedded one), as
   * RedisPresence prunes Redis's: a removed session's entry goes {@link leaveGraceMs} later
   * (without a grace: at once while the user keeps another session, else with the detach
   * cleanup). Unset: the registry is left alone (its entries go with the user's last session).
   */
  registry?: LeavingSessions;
  /** How long the registry entry of a session that left stays, for it to resume with its id. @default 0 */
  leaveGraceMs?: number;
}

interface Held {
  entry: SessionEntry;
  expiresAt: number;
}

/**
 * The embedded default: presence in this process's memory, for a single
 * instance. Every method does its work synchronously before its promise
 * resolves, so each call is atomic like a Redis script is.
 */
export class MemoryPresence implements Presence {
  readonly #users = new Map<string, Map<string, Held>>();
  readonly #instances = new Map<string, { info: InstanceInfo; expiresAt: number }>();
  /** User id -> who holds their detach claim, until when; in expiry order (every claim has the same TTL). */
  readonly #claims = new Map<string, { claimant: string; expiresAt: number }>();
  readonly #ttlMs: number;
  readonly #now: () => number;
  readonly #registry: LeavingSessions | undefined;
  readonly #leaveGraceMs: number;

  constructor(options: MemoryPresenceOptions = {}) {
    this.#ttlMs = options.instanceTtlMs ?? DEFAULT_INSTANCE_TTL_MS;
    this.#now = options.now ?? Date.now;
    this.#registry = options.registry;
    this.#leaveGraceMs = options.leaveGraceMs ?? 0;
  }

  /** The user's live entries, expired ones dropped first (what every Redis script does too). */
  #live(userId: string): Map<string, Held> | undefined {
    const held = this.#users.get(userId);
    if (!held) return undefined;
    const now = this.#now();
    for (const [id, h] of held) if (h.expiresAt <= now) held.delete(id);
    if (held.size > 0) return held;
    this.#users.delete(userId);
    return undefined;
  }

  async add(userId: string, entry: SessionEntry, options: PresenceAddOptions = {}): Promise<PresenceAddResult> {
    const held = this.#live(userId) ?? new Map<string, Held>();
    const previous = held.get(entry.sessionId);
    if (options.reannounce && previous && previous.entry.instanceId !== entry.instanceId) {
      return { refused: true, heldElsewhere: true, count: held.size };
    }
    const others = held.size - (previous ? 1 : 0);
    if (options.maxSessions && others >= options.maxSessions) return { refused: true, count: held.size };
    held.set(entry.sessionId, { entry: { ...entry }, expiresAt: this.#now() + this.#ttlMs });
    this.#users.set(userId, held);
    this.#claims.delete(userId);
    this.#registry?.sessionBack(userId, entry.sessionId);
    return previous
      ? { refused: false, replaced: { ...previous.entry }, count: held.size }
      : { refused: false, count: held.size };
  }

  async remove(userId: string, sessionId: string, instanceId: string): Promise<boolean> {
    const held = this.#live(userId);
    if (held?.get(sessionId)?.entry.instanceId !== instanceId) return false;
    held.delete(sessionId);
    // Without a grace, the user's last session's entry is the detach cleanup's (as in Redis).
    if (held.size > 0 || this.#leaveGraceMs > 0) this.#registry?.sessionLeft(userId, sessionId, this.#leaveGraceMs);
    if (held.size === 0) this.#users.delete(userId);
    return true;
  }

  async sessions(userId: string): Promise<SessionEntry[]> {
    return [...(this.#live(userId)?.values() ?? [])].map((h) => ({ ...h.entry })).sort(bySessionAge);
  }

  /** Live sessions of the user, synchronously: lets {@link import('../detach/memory-detach-decision').MemoryDetachDecision} decide without yielding. */
  liveCount(userId: string): number {
    return this.#live(userId)?.size ?? 0;
  }

  /**
   * The detach claim, synchronously (see {@link import('../detach/detach-decision').DetachDecision.claim}):
   * `present` while the user has a live session; else the first call since their
   * last add wins for `ttlMs`, later ones are `taken`.
   */
  claimDetach(userId: string, ttlMs: number, claimant = ''): 'won' | 'present' | 'taken' {
    const now = this.#now();
    for (const [id, { expiresAt }] of this.#claims) {
      if (expiresAt > now) break;
      this.#claims.delete(id);
    }
    if (this.liveCount(userId) > 0) return 'present';
    const held = this.#claims.get(userId);
    // The winner asking again (its answer lost) has it still: it must not skip its own cleanup.
    if (held) return held.claimant === claimant && claimant !== '' ? 'won' : 'taken';
    this.#claims.set(userId, { claimant, expiresAt: now + ttlMs });
    return 'won';
  }

  async refresh(instanceId: string, held: Iterable<HeldSessions>): Promise<string[]> {
    const lost: string[] = [];
    const expiresAt = this.#now() + this.#ttlMs;
    for (const [userId, sessionIds] of held) {
      const live = this.#live(userId);
      let found = 0;
      for (const sessionId of sessionIds) {
        const h = live?.get(sessionId);
        if (h?.entry.instanceId !== instanceId) continue;
        h.expiresAt = expiresAt;
        found++;
      }
      if (found < sessionIds.length) lost.push(userId);
    }
    return lost;
  }

  async announce(info: Omit<InstanceInfo, 'lastSeen'>, ttlMs: number): Promise<void> {
    const now = this.#now();
    this.#instances.set(info.id, { info: { ...info, lastSeen: now }, expiresAt: now + ttlMs });
  }

  async instances(): Promise<InstanceInfo[]> {
    const now = this.#now();
    for (const [id, i] of this.#instances) if (i.expiresAt <= now) this.#instances.delete(id);
    return [...this.#instances.values()].map((i) => ({ ...i.info })).sort((a, b) => (a.id < b.id ? -1 : 1));
  }

  async retire(instanceId: string): Promise<void> {
    this.#instances.delete(instanceId);
  }
}
