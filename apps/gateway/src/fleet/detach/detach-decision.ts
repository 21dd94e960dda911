/** What {@link DetachDecision.cleanupIfAbsent} found and did. */
export type DetachOutcome =
  /** The user had no live session on any instance: their legacy registry sessions are gone and the unified document says offline. */
  | 'cleaned'
  /** A live session exists somewhere in the fleet (a reconnect, another instance): nothing was changed. */
  | 'present';

/**
 * What {@link DetachDecision.claim} decided for one instance whose detach delay ran out.
 * Several instances can reach it for the same departure (the user left all of them at
 * once): exactly one of them gets `won` and runs the cleanup.
 */
export type DetachClaim =
  /** This instance runs the cleanup of this departure. */
  | 'won'
  /** A live session exists somewhere in the fleet: there is nothing to clean. */
  | 'present'
  /** Another instance (or an earlier attempt of this one) claimed this departure: its cleanup is theirs. */
  | 'taken';

/** Options shared by the {@link DetachDecision} implementations. */
export interface DetachDecisionOptions {
  /**
   * How long a claim keeps the other instances off the same departure. Every instance
   * the user left decides within `DETACH_DELAY_MS` of the first decision (a session
   * still open at that decision keeps the user present), so this must exceed the
   * detach delay; a session added anywhere ends the claim at once.
   * @default 60_000
   */
  claimTtlMs?: number;
}

/** Default of {@link DetachDecisionOptions.claimTtlMs}. */
export const DEFAULT_CLAIM_TTL_MS = 60_000;

/**
 * Port: the fleet-wide half of a user's detach, the only one there is (it replaced a
 * registry cleanup by registration time, which compared ISO times written by
 * different instances: clock skew could wipe a reconnect's session). Here the decision is fenced by presence instead: it is taken in one
 * atomic step that sees every instance's live sessions, so a session added
 * before it keeps the user online and one added after it re-registers itself.
 *
 * It is a port of its own, not a RegistryStore method, because it spans two
 * stores (presence and registry): the Redis implementation runs one script over
 * both on the user's slot; the memory one reads both stores without yielding.
 */
export interface DetachDecision {
  /**
   * The detach decision, one atomic step: removes expired presence entries, then
   * answers `present` if the user has a live session anywhere; otherwise the first
   * caller since the user's last session was added gets `won` (recorded under
   * `claimant`, for operators), every later one `taken`. A presence add clears the
   * claim: the next departure is decided afresh.
   */
  claim(userId: string, claimant: string): Promise<DetachClaim>;
  /**
   * Removes expired presence entries, then: if the user has a live session
   * anywhere, answers `present`; otherwise deletes the user's legacy registry
   * sessions, marks the unified document offline (keeping its TTL) and answers
   * `cleaned`. Idempotent. Run by the instance whose {@link claim} won; it still
   * re-checks presence, as a session may have been added since the claim.
   */
  cleanupIfAbsent(userId: string): Promise<DetachOutcome>;
}
