import type { RegistrySession, UserRegistry } from '@livebus/protocol';
import type { RegistryStore } from './registry-store';

/**
 * The embedded default: the registry in this process's memory. Told by the embedded presence
 * when a session leaves and comes back ({@link sessionLeft}, {@link sessionBack}), it prunes
 * the entry of a session that left once its leave grace is over, as the Redis registry's
 * entries go with their presence. Registered while presence holds nothing of the user (after
 * the detach cleanup: an RPC in flight at the last close, a backend naming a closed session;
 * or with no presence told), the user's entries go `sessionsTtlS` later unless the user comes
 * back first: the Redis registry's backstop.
 */
export class MemoryRegistryStore implements RegistryStore {
  readonly sharedAcrossInstances = false;
  readonly #sessions = new Map<string, Map<string, RegistrySession>>();
  readonly #unified = new Map<string, { doc: UserRegistry; expiresAt: number; ttlMs: number }>();
  /**
   * TTL -> the users whose unified document was last written or touched with it, in expiry order
   * (re-inserted at each put and touch). The TTL is per call, so one order per TTL value (one in the
   * gateway): every operation drops the due documents from their fronts ({@link #sweep}).
   */
  readonly #unifiedByTtl = new Map<number, Set<string>>();
  /**
   * User id -> the sessions that left in their grace -> when their entry goes. Also those with no
   * entry: one registered after its close (an RPC in flight, POST /rpc naming its id) goes then too.
   */
  readonly #leaving = new Map<string, Map<string, number>>();
  /** Users presence holds (told by {@link sessionBack}) and not cleared since. */
  readonly #present = new Set<string>();
  /**
   * User id -> when all their entries go: registered while the user was not present (the backstop).
   * In expiry order (re-inserted at each registration, one TTL): every operation drops the due ones
   * from the front ({@link #sweep}), those of users no call names again too, as Redis's keys expire.
   */
  readonly #expiresAt = new Map<string, number>();
  readonly #now: () => number;
  readonly #sessionsTtlMs: number;

  /** @param options.sessionsTtlS the backstop, as RedisRegistryStore's. @default 86_400 */
  constructor(now: () => number = Date.now, options: { sessionsTtlS?: number } = {}) {
    this.#now = now;
    this.#sessionsTtlMs = (options.sessionsTtlS ?? 86_400) * 1000;
  }

  /**
   * A session of the user left (its presence entry removed): its registered entry goes
   * `graceMs` later (at once for 0), unless {@link sessionBack} says it came back meanwhile.
   * The user's entries whose grace is over go first, so the records stay few (those of the
   * user's last grace) while the user stays connected. A session with no entry is recorded too:
   * registered after this, its entry still goes at that time ({@link registerSession}).
   */
  sessionLeft(userId: string, sessionId: string, graceMs: number): void {
    this.#sweep();
    this.#prune(userId);
    if (graceMs <= 0) this.#forget(userId, sessionId);
    // Without a grace, recorded as due now: a registration right after the close is not kept
    // either (the record goes with the user's next operation).
    const leaving = this.#leaving.get(userId) ?? new Map<string, number>();
    leaving.set(sessionId, this.#now() + Math.max(0, graceMs));
    this.#leaving.set(userId, leaving);
  }

  /** How many sessions' entries are due to go, over every user (diagnostics, tests). */
  leavingCount(): number {
    let count = 0;
    for (const leaving of this.#leaving.values()) count += leaving.size;
    return count;
  }

  /** How many users' entries go with the backstop (diagnostics, tests). */
  backstopCount(): number {
    return this.#expiresAt.size;
  }

  /** How many users' unified documents are held, expired ones not swept yet included (diagnostics, tests). */
  unifiedCount(): number {
    return this.#unified.size;
  }

  /** The session is back (its presence entry added again): its entry stays, and the user's backstop ends. */
  sessionBack(userId: string, sessionId: string): void {
    this.#sweep();
    this.#present.add(userId);
    this.#expiresAt.delete(userId);
    this.#keep(userId, sessionId);
  }

  /** Drops the session's leave record, if any. */
  #keep(userId: string, sessionId: string): void {
    const leaving = this.#leaving.get(userId);
    if (!leaving?.delete(sessionId)) return;
    if (leaving.size === 0) this.#leaving.delete(userId);
  }

  /**
   * Drops the entries of the users whose backstop is over and the unified documents that expired,
   * from the fronts (every operation does, first).
   */
  #sweep(): void {
    const now = this.#now();
    for (const [userId, expiresAt] of this.#expiresAt) {
      if (expiresAt > now) break;
      this.#sessions.delete(userId);
      this.#expiresAt.delete(userId);
    }
    for (const [ttlMs, userIds] of this.#unifiedByTtl) {
      for (const userId of userIds) {
        if ((this.#unified.get(userId)?.expiresAt ?? now) > now) break; // each id held has a document
        this.#unified.delete(userId);
        userIds.delete(userId);
      }
      if (userIds.size === 0) this.#unifiedByTtl.delete(ttlMs);
    }
  }

  /** Sets the document's expiry, moved to the back of its TTL's order. */
  #expireUnified(userId: string, doc: UserRegistry, ttlS: number): void {
    const old = this.#unified.get(userId);
    if (old) this.#unifiedByTtl.get(old.ttlMs)?.delete(userId);
    const ttlMs = ttlS * 1000;
    this.#unified.set(userId, { doc, expiresAt: this.#now() + ttlMs, ttlMs });
    const userIds = this.#unifiedByTtl.get(ttlMs) ?? new Set<string>();
    this.#unifiedByTtl.set(ttlMs, userIds.add(userId));
  }

  /** Drops the entries of the user's sessions whose leave grace is over (every read and write of the user does). */
  #prune(userId: string): void {
    const leaving = this.#leaving.get(userId);
    if (!leaving) return;
    const now = this.#now();
    for (const [sessionId, dueAt] of leaving) if (dueAt <= now) this.#forget(userId, sessionId);
  }

  #forget(userId: string, sessionId: string): void {
    this.#keep(userId, sessionId);
    const sessions = this.#sessions.get(userId);
    if (sessions?.delete(sessionId) && sessions.size === 0) this.#sessions.delete(userId);
  }

  async registerSession(
    userId: string,
    session: RegistrySession,
    maxSessions = Number.MAX_SAFE_INTEGER,
  ): Promise<boolean> {
    // Left already (registered after its close): the entry goes when the leave says, at once when due.
    const leftDueAt = this.#leaving.get(userId)?.get(session.session_id);
    this.#sweep();
    this.#prune(userId);
    const sessions = this.#sessions.get(userId) ?? new Map<string, RegistrySession>();
    if (!sessions.has(session.session_id) && sessions.size >= maxSessions) return false;
    if (leftDueAt !== undefined && leftDueAt <= this.#now()) return true;
    this.#sessions.set(userId, sessions);
    sessions.set(session.session_id, structuredClone(session));
    if (!this.#present.has(userId)) {
      this.#expiresAt.delete(userId); // to the back: in expiry order
      this.#expiresAt.set(userId, this.#now() + this.#sessionsTtlMs);
    }
    return true;
  }

  async unregisterSession(userId: string, sessionId: string): Promise<boolean> {
    this.#sweep();
    const sessions = this.#sessions.get(userId);
    const removed = sessions?.delete(sessionId) ?? false;
    if (sessions?.size === 0) {
      this.#sessions.delete(userId);
      this.#expiresAt.delete(userId);
    }
    return removed;
  }

  async getSessions(userId: string): Promise<RegistrySession[]> {
    this.#sweep();
    this.#prune(userId);
    return [...(this.#sessions.get(userId)?.values() ?? [])]
      .map((s) => structuredClone(s))
      .sort((a, b) => a.registered_at.localeCompare(b.registered_at));
  }

  async getUnified(userId: string): Promise<UserRegistry | undefined> {
    this.#sweep();
    const entry = this.#unified.get(userId); // unexpired: the sweep dropped the due ones
    return entry && structuredClone(entry.doc);
  }

  async putUnified(userId: string, doc: UserRegistry, ttlS: number): Promise<void> {
    this.#sweep();
    this.#expireUnified(userId, structuredClone(doc), ttlS);
  }

  async touchUnified(userId: string, ttlS: number): Promise<void> {
    this.#sweep();
    const entry = this.#unified.get(userId);
    if (entry) this.#expireUnified(userId, entry.doc, ttlS);
  }

  /**
   * Removes every legacy session of the user and marks the unified document
   * offline, synchronously: {@link import('../detach/memory-detach-decision').MemoryDetachDecision}
   * calls it right after reading presence, with no await in between. The user is no longer
   * present: what is registered for them afterwards goes with the backstop unless they come back.
   */
  clearUser(userId: string): void {
    this.#sweep();
    this.#sessions.delete(userId);
    this.#leaving.delete(userId);
    this.#present.delete(userId);
    this.#expiresAt.delete(userId);
    const entry = this.#unified.get(userId);
    if (entry) entry.doc.user_info.status = 'offline';
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {
    this.#sessions.clear();
    this.#leaving.clear();
    this.#present.clear();
    this.#expiresAt.clear();
    this.#unified.clear();
    this.#unifiedByTtl.clear();
  }
}
