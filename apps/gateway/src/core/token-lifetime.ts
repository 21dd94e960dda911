import { DeadlineWheel } from './deadline-wheel';
import type { Session } from './session';
import { type TokenScheduleOptions, tokenDeadlines } from './token-schedule';

/** Options of {@link TokenLifetime}. */
export interface TokenLifetimeOptions extends TokenScheduleOptions {
  /** The session's token expires soon: ask the client for a fresh one. */
  onExpiring(session: Session, expiresAtMs: number): void;
  /** The session's token expired and the grace passed: close it. */
  onExpired(session: Session): void;
  /** Clock, in ms since the epoch. @default Date.now */
  now?: () => number;
}

/**
 * Keeps every open session no longer than its token: one deadline per session,
 * for the next step of its token's life (ask for a fresh token, then expire),
 * all on one shared {@link DeadlineWheel} rather than a timer per session (at
 * most a quarter of a second late). When the steps come is {@link tokenDeadlines}'s
 * rule. A session whose principal carries no expiry (AUTH_MODE=none, tokens
 * without `exp`, accepted only with JWT_REQUIRE_EXP off) is not tracked.
 *
 *   open/refresh --> askAt: notice token_expiring (once per token) --> closeAt: close 4011
 *         ^                                   |
 *         +------------- auth frame ----------+
 */
export class TokenLifetime {
  readonly #o: TokenLifetimeOptions;
  readonly #now: () => number;
  readonly #wheel: DeadlineWheel<Session>;

  constructor(options: TokenLifetimeOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
    this.#wheel = new DeadlineWheel({ now: this.#now, onDue: (session, at) => this.#due(session, at) });
  }

  /** (Re)starts tracking a session from its current principal's expiry: a fresh token gets its own ask. */
  track(session: Session): void {
    this.untrack(session);
    const expiresAt = session.principal.expiresAtMs;
    if (expiresAt === undefined) return;
    const now = this.#now();
    const { askAtMs, closeAtMs } = tokenDeadlines(expiresAt, now, this.#o);
    // No ask when it would come with the close (no lead, no tolerance, no grace): just the close.
    if (askAtMs > now) this.#wheel.set(session, Math.min(askAtMs, closeAtMs));
    else this.#expiring(session, expiresAt, closeAtMs);
  }

  untrack(session: Session): void {
    this.#wheel.delete(session);
  }

  /** Sessions tracked (tests, /debug). */
  get size(): number {
    return this.#wheel.size;
  }

  /** A deadline passed: the ask step if it comes before the close, else the close step. */
  #due(session: Session, at: number): void {
    const expiresAt = session.principal.expiresAtMs;
    if (expiresAt === undefined) return;
    // The close deadline depends only on exp; the ask always comes before it.
    const closeAt = tokenDeadlines(expiresAt, at, this.#o).closeAtMs;
    if (at < closeAt) this.#expiring(session, expiresAt, closeAt);
    else this.#o.onExpired(session);
  }

  #expiring(session: Session, expiresAt: number, closeAt: number): void {
    this.#o.onExpiring(session, expiresAt);
    if (closeAt > this.#now()) this.#wheel.set(session, closeAt);
    else this.#o.onExpired(session);
  }
}
