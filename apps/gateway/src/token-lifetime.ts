import { DeadlineWheel } from './deadline-wheel';
import type { Session } from './session';

/** Options of {@link TokenLifetime}. */
export interface TokenLifetimeOptions {
  /** Ask for a fresh token this long before the current one expires. */
  refreshLeadMs: number;
  /** Close a session this long after its token expired without a fresh one. */
  graceMs: number;
  /** The session's token expires soon: ask the client for a fresh one. */
  onExpiring(session: Session, expiresAtMs: number): void;
  /** The session's token expired and the grace passed: close it. */
  onExpired(session: Session): void;
}

/**
 * Keeps every open session no longer than its token: one deadline per session,
 * for the next step of its token's life (ask for a fresh token, then expire),
 * all on one shared {@link DeadlineWheel} rather than a timer per session (at
 * most a quarter of a second late). A session whose principal carries no
 * expiry (AUTH_MODE=none, tokens without `exp`) is not tracked.
 *
 *   open/refresh --> (expiresAt - lead) notice token_expiring --> (expiresAt + grace) close 4011
 *         ^                                   |
 *         +------------- auth frame ----------+
 */
export class TokenLifetime {
  readonly #o: TokenLifetimeOptions;
  readonly #wheel: DeadlineWheel<Session>;

  constructor(options: TokenLifetimeOptions) {
    this.#o = options;
    this.#wheel = new DeadlineWheel({ onDue: (session, at) => this.#due(session, at) });
  }

  /** (Re)starts tracking a session from its current principal's expiry. */
  track(session: Session, now = Date.now()): void {
    this.untrack(session);
    const expiresAt = session.principal.expiresAtMs;
    if (expiresAt === undefined) return;
    const askAt = expiresAt - this.#o.refreshLeadMs;
    if (askAt > now) this.#wheel.set(session, askAt);
    else this.#expiring(session, expiresAt, now);
  }

  untrack(session: Session): void {
    this.#wheel.delete(session);
  }

  /** Sessions tracked (tests, /debug). */
  get size(): number {
    return this.#wheel.size;
  }

  /** A deadline passed: the ask step if it was the ask deadline, else the close step. */
  #due(session: Session, at: number): void {
    const expiresAt = session.principal.expiresAtMs;
    if (expiresAt === undefined) return;
    if (at === expiresAt - this.#o.refreshLeadMs) this.#expiring(session, expiresAt);
    else this.#o.onExpired(session);
  }

  #expiring(session: Session, expiresAt: number, now = Date.now()): void {
    this.#o.onExpiring(session, expiresAt);
    const closeAt = expiresAt + this.#o.graceMs;
    if (closeAt > now) this.#wheel.set(session, closeAt);
    else this.#o.onExpired(session);
  }
}
