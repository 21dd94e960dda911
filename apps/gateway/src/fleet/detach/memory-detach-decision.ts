import { MemoryPresence } from '../presence/memory-presence';
import type { Presence } from '../presence/presence';
import { MemoryRegistryStore } from '../registry/memory-registry-store';
import type { RegistryStore } from '../registry/registry-store';
import {
  DEFAULT_CLAIM_TTL_MS,
  type DetachClaim,
  type DetachDecision,
  type DetachDecisionOptions,
  type DetachOutcome,
} from './detach-decision';

/**
 * The embedded default (single instance): decides on the in-memory presence and
 * registry. Both are read and written synchronously, with no await in between,
 * so no add can slip between the check and the cleanup.
 */
export class MemoryDetachDecision implements DetachDecision {
  readonly #presence: MemoryPresence;
  readonly #registry: MemoryRegistryStore;
  readonly #claimTtlMs: number;

  constructor(presence: MemoryPresence, registry: MemoryRegistryStore, options: DetachDecisionOptions = {}) {
    this.#presence = presence;
    this.#registry = registry;
    this.#claimTtlMs = options.claimTtlMs ?? DEFAULT_CLAIM_TTL_MS;
  }

  async claim(userId: string, claimant: string): Promise<DetachClaim> {
    return this.#presence.claimDetach(userId, this.#claimTtlMs, claimant);
  }

  async cleanupIfAbsent(userId: string): Promise<DetachOutcome> {
    if (this.#presence.liveCount(userId) > 0) return 'present';
    this.#registry.clearUser(userId);
    return 'cleaned';
  }
}

/**
 * The decision a gateway makes for itself when it is given none: the embedded one,
 * over the embedded presence and registry. A presence or registry of another kind
 * needs its own decision (one that reads both atomically, as
 * {@link import('./redis-detach-decision').RedisDetachDecision} does), passed with them.
 *
 * @throws TypeError when `presence` or `registry` is not the embedded one
 */
export function embeddedDetachDecision(presence: Presence, registry: RegistryStore): DetachDecision {
  if (presence instanceof MemoryPresence && registry instanceof MemoryRegistryStore) {
    return new MemoryDetachDecision(presence, registry);
  }
  throw new TypeError(
    'a presence or registry of your own needs its detachDecision port too: the detach decision reads both in one step',
  );
}
