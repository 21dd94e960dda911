import type { RegistrySession, UserRegistry } from '@livebus/protocol';
import type { RegistryStore } from './registry-store';

/** The embedded default: the registry in this process's memory. */
export class MemoryRegistryStore implements RegistryStore {
  readonly sharedAcrossInstances = false;
  readonly #sessions = new Map<string, Map<string, RegistrySession>>();
  readonly #unified = new Map<string, { doc: UserRegistry; expiresAt: number }>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  async registerSession(
    userId: string,
    session: RegistrySession,
    maxSessions = Number.MAX_SAFE_INTEGER,
  ): Promise<boolean> {
    const sessions = this.#sessions.get(userId) ?? new Map<string, RegistrySession>();
    if (!sessions.has(session.session_id) && sessions.size >= maxSessions) return false;
    this.#sessions.set(userId, sessions);
    sessions.set(session.session_id, structuredClone(session));
    return true;
  }

  async unregisterSession(userId: string, sessionId: string): Promise<boolean> {
    const sessions = this.#sessions.get(userId);
    const removed = sessions?.delete(sessionId) ?? false;
    if (sessions?.size === 0) this.#sessions.delete(userId);
    return removed;
  }

  async getSessions(userId: string): Promise<RegistrySession[]> {
    return [...(this.#sessions.get(userId)?.values() ?? [])]
      .map((s) => structuredClone(s))
      .sort((a, b) => a.registered_at.localeCompare(b.registered_at));
  }

  async getUnified(userId: string): Promise<UserRegistry | undefined> {
    const entry = this.#unified.get(userId);
    if (!entry) return undefined;
    if (entry.expiresAt <= this.#now()) {
      this.#unified.delete(userId);
      return undefined;
    }
    return structuredClone(entry.doc);
  }

  async putUnified(userId: string, doc: UserRegistry, ttlS: number): Promise<void> {
    this.#unified.set(userId, { doc: structuredClone(doc), expiresAt: this.#now() + ttlS * 1000 });
  }

  async touchUnified(userId: string, ttlS: number): Promise<void> {
    const entry = this.#unified.get(userId);
    if (entry) entry.expiresAt = this.#now() + ttlS * 1000;
  }

  /**
   * Removes every legacy session of the user and marks the unified document
   * offline, synchronously: {@link import('../detach/memory-detach-decision').MemoryDetachDecision}
   * calls it right after reading presence, with no await in between.
   */
  clearUser(userId: string): void {
    this.#sessions.delete(userId);
    const entry = this.#unified.get(userId);
    if (entry) entry.doc.user_info.status = 'offline';
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {
    this.#sessions.clear();
    this.#unified.clear();
  }
}
