/** What {@link DetachDecision.cleanupIfAbsent} found and did. */
export type DetachOutcome =
  /** The user had no live session on any instance: their legacy registry sessions are gone and the unified document says offline. */
  | 'cleaned'
  /** A live session exists somewhere in the fleet (a reconnect, another instance): nothing was changed. */
  | 'present';

/**
 * Port: the fleet-wide half of a user's detach. Replaces
 * `RegistryStore.cleanupUser(userId, registeredBefore)`, which compared ISO
 * times written by different instances (clock skew could wipe a reconnect's
 * session). Here the decision is fenced by presence instead: it is taken in one
 * atomic step that sees every instance's live sessions, so a session added
 * before it keeps the user online and one added after it re-registers itself.
 *
 * It is a port of its own, not a RegistryStore method, because it spans two
 * stores (presence and registry): the Redis implementation runs one script over
 * both on the user's slot; the memory one reads both stores without yielding.
 */
export interface DetachDecision {
  readonly kind: 'memory' | 'redis';
  /**
   * Removes expired presence entries, then: if the user has a live session
   * anywhere, answers `present`; otherwise deletes the user's legacy registry
   * sessions, marks the unified document offline (keeping its TTL) and answers
   * `cleaned`. Idempotent.
   */
  cleanupIfAbsent(userId: string): Promise<DetachOutcome>;
}
