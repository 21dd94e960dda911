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

// setTimeout holds at most 2^31 - 1 ms (about 24.8 days); longer waits are re-armed.
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Keeps every open session no longer than its token: one timer per session, for
 * the next step of its token's life (ask for a fresh token, then expire). A
 * session whose principal carries no expiry (AUTH_MODE=none, tokens without
 * `exp`) is not tracked.
 *
 *   open/refresh --> (expiresAt - lead) notice token_expiring --> (expiresAt + grace) close 4011
 *         ^                                   |
 *         +------------- auth frame ----------+
 */
export class TokenLifetime {
  readonly #o: TokenLifetimeOptions;
  readonly #timers = new Map<Session, NodeJS.Timeout>();

  constructor(options: TokenLifetimeOptions) {
    this.#o = options;
  }

  /** (Re)starts tracking a session from its current principal's expiry. */
  track(session: Session, now = Date.now()): void {
    this.untrack(session);
    const expiresAt = session.principal.expiresAtMs;
    if (expiresAt === undefined) return;
    const askAt = expiresAt - this.#o.refreshLeadMs;
    if (askAt > now) this.#arm(session, askAt, () => this.#expiring(session, expiresAt));
    else this.#expiring(session, expiresAt, now);
  }

  untrack(session: Session): void {
    clearTimeout(this.#timers.get(session));
    this.#timers.delete(session);
  }

  /** Sessions tracked (tests, /debug). */
  get size(): number {
    return this.#timers.size;
  }

  #expiring(session: Session, expiresAt: number, now = Date.now()): void {
    this.#o.onExpiring(session, expiresAt);
    const closeAt = expiresAt + this.#o.graceMs;
    if (closeAt > now) this.#arm(session, closeAt, () => this.#expired(session));
    else this.#expired(session);
  }

  #expired(session: Session): void {
    this.#timers.delete(session);
    this.#o.onExpired(session);
  }

  #arm(session: Session, at: number, fire: () => void): void {
    const wait = at - Date.now();
    const timer =
      wait > MAX_TIMER_MS
        ? setTimeout(() => this.#arm(session, at, fire), MAX_TIMER_MS)
        : setTimeout(fire, Math.max(0, wait));
    timer.unref();
    this.#timers.set(session, timer);
  }
}
