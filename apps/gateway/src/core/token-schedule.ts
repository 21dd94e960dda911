/**
 * Clock skew tolerated between a token's issuer and the gateway (TOKEN_CLOCK_TOLERANCE_MS):
 * a token stays valid until `exp` plus this, wherever it comes in.
 */
export const DEFAULT_TOKEN_CLOCK_TOLERANCE_MS = 5_000;

/** Settings of {@link tokenDeadlines}. */
export interface TokenScheduleOptions {
  /** Ask for a fresh token at most this long before the token expires (TOKEN_REFRESH_LEAD_MS). */
  refreshLeadMs: number;
  /** The token stays valid this long past its `exp` (TOKEN_CLOCK_TOLERANCE_MS). */
  clockToleranceMs: number;
  /** A session whose token is no longer valid waits this long for a fresh one (TOKEN_EXPIRY_GRACE_MS). */
  graceMs: number;
}

/** The two steps of one token's life on an open session, in ms since the epoch. */
export interface TokenDeadlines {
  /** Send `notice` `token_expiring`, once for this token. */
  askAtMs: number;
  /** Close the session with 4011 unless a fresh token came. */
  closeAtMs: number;
}

/**
 * When to ask for a fresh token and when to give up on a token the gateway
 * received at `receivedAtMs`. The ask comes `min(lead, half the remaining life)`
 * before `exp`: a token shorter than the lead is asked for at half its life,
 * not at once (asking at once made every fresh short token ask again, a storm of
 * tokens). The close comes only after the token stopped being valid (`exp` plus
 * the clock tolerance) and the grace passed, so a session never closes while
 * the token it holds would still be accepted on any other way in.
 */
export function tokenDeadlines(expiresAtMs: number, receivedAtMs: number, o: TokenScheduleOptions): TokenDeadlines {
  const remainingMs = Math.max(0, expiresAtMs - receivedAtMs);
  const leadMs = Math.min(o.refreshLeadMs, Math.floor(remainingMs / 2));
  return { askAtMs: expiresAtMs - leadMs, closeAtMs: expiresAtMs + o.clockToleranceMs + o.graceMs };
}
