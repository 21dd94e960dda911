import type { MemoryPresence } from '../presence/memory-presence';
import type { MemoryRegistryStore } from '../registry/memory-registry-store';
import type { DetachDecision, DetachOutcome } from './detach-decision';

/**
 * The embedded default (single instance): decides on the in-memory presence and
 * registry. Both are read and written synchronously, with no await in between,
 * so no add can slip between the check and the cleanup.
 */
export class MemoryDetachDecision implements DetachDecision {
  readonly kind = 'memory' as const;
  readonly #presence: MemoryPresence;
  readonly #registry: MemoryRegistryStore;

  constructor(presence: MemoryPresence, registry: MemoryRegistryStore) {
    this.#presence = presence;
    this.#registry = registry;
  }

  async cleanupIfAbsent(userId: string): Promise<DetachOutcome> {
    if (this.#presence.liveCount(userId) > 0) return 'present';
    this.#registry.clearUser(userId);
    return 'cleaned';
  }
}
