/**
 * WebSocket close codes used by livebus. Standard codes (1000-1015) keep their
 * RFC 6455 meaning; application codes live in 4000-4999.
 */
export enum CloseCode {
  /** Orderly close by either side; nothing to retry. */
  NormalClosure = 1000,
  /** The peer is going away (browser tab closed, server shutting down without notice). */
  GoingAway = 1001,
  /** The peer violated the WebSocket protocol. */
  ProtocolError = 1002,
  /** The peer sent a data type it must not (binary frames, for example). */
  UnsupportedData = 1003,
  /** Reserved: no close code was present. Never sent, only observed. */
  NoStatus = 1005,
  /** Reserved: the connection dropped without a close frame. Never sent, only observed. */
  AbnormalClosure = 1006,
  /** The payload was not valid UTF-8. */
  InvalidPayload = 1007,
  /** Generic policy violation. */
  PolicyViolation = 1008,
  /** A frame exceeded the maximum size. */
  MessageTooBig = 1009,
  /** The server hit an unexpected condition. */
  InternalError = 1011,
  /** The server is restarting (deploy, scale-in): reconnect, preferably elsewhere, after the hinted delay. */
  ServiceRestart = 1012,
  /** The server is overloaded: reconnect later. */
  TryAgainLater = 1013,

  /** The token was missing, invalid or expired. */
  AuthFailed = 4001,
  /** No valid `hello` frame arrived within the handshake timeout. */
  AuthTimeout = 4002,
  /** The credentials were valid but are not allowed here. */
  Forbidden = 4003,
  /** A frame could not be parsed or was not allowed at this point. */
  BadFrame = 4004,
  /** The peer sent too much, too fast. */
  RateLimited = 4005,
  /** The user already has the maximum number of sessions open. */
  TooManySessions = 4006,
  /** The peer did not read fast enough; its send buffer overflowed. */
  SlowConsumer = 4007,
  /** A newer connection with the same session id replaced this one. */
  Replaced = 4008,
  /** The peer stayed silent longer than the ping timeout. */
  PingTimeout = 4009,
  /** The client speaks a protocol version the server does not. */
  UnsupportedVersion = 4010,
  /** The session's token expired and no fresh one arrived in time: get a fresh token and reconnect. */
  TokenExpired = 4011,
}

/** Stable names for why a connection ended; used as metric labels and in `ws_disconnect` logs. */
export const DISCONNECT_REASONS = [
  'normal_closure',
  'going_away',
  'abnormal_closure',
  'no_status',
  'server_error',
  'service_restart',
  'try_again_later',
  'ping_timeout',
  'auth_failed',
  'auth_timeout',
  'forbidden',
  'protocol_error',
  'policy_violation',
  'message_too_big',
  'rate_limited',
  'too_many_sessions',
  'slow_consumer',
  'replaced',
  'unsupported_version',
  'token_expired',
  'unknown',
] as const;

/** One of {@link DISCONNECT_REASONS}. */
export type DisconnectReason = (typeof DISCONNECT_REASONS)[number];

const byCode: Record<number, DisconnectReason> = {
  [CloseCode.NormalClosure]: 'normal_closure',
  [CloseCode.GoingAway]: 'going_away',
  [CloseCode.ProtocolError]: 'protocol_error',
  [CloseCode.UnsupportedData]: 'protocol_error',
  [CloseCode.NoStatus]: 'no_status',
  [CloseCode.AbnormalClosure]: 'abnormal_closure',
  [CloseCode.InvalidPayload]: 'protocol_error',
  [CloseCode.PolicyViolation]: 'policy_violation',
  [CloseCode.MessageTooBig]: 'message_too_big',
  [CloseCode.InternalError]: 'server_error',
  [CloseCode.ServiceRestart]: 'service_restart',
  [CloseCode.TryAgainLater]: 'try_again_later',
  [CloseCode.AuthFailed]: 'auth_failed',
  [CloseCode.AuthTimeout]: 'auth_timeout',
  [CloseCode.Forbidden]: 'forbidden',
  [CloseCode.BadFrame]: 'protocol_error',
  [CloseCode.RateLimited]: 'rate_limited',
  [CloseCode.TooManySessions]: 'too_many_sessions',
  [CloseCode.SlowConsumer]: 'slow_consumer',
  [CloseCode.Replaced]: 'replaced',
  [CloseCode.PingTimeout]: 'ping_timeout',
  [CloseCode.UnsupportedVersion]: 'unsupported_version',
  [CloseCode.TokenExpired]: 'token_expired',
};

const reasonNames: ReadonlySet<string> = new Set(DISCONNECT_REASONS);

/**
 * Classifies a close into a stable reason name. The reason string only matters
 * where the code alone is ambiguous: a socket the gateway terminated for silence
 * is observed as 1006, so it is classified with the reason `ping_timeout`. A
 * reason that is exactly one of {@link DISCONNECT_REASONS} wins over the code,
 * except for 4001, whose reason is one of {@link AUTH_FAILURE_REASONS}.
 */
export function classifyDisconnect(code: number, reason = ''): DisconnectReason {
  // A 4001's reason is an auth failure reason (`token_expired` among them), not a disconnect reason.
  if (code === CloseCode.AuthFailed) return 'auth_failed';
  if (reasonNames.has(reason) && reason !== 'unknown') return reason as DisconnectReason;
  return byCode[code] ?? 'unknown';
}

/** What a client should do after a close of a given reason. */
export type ReconnectPolicy = 'reconnect' | 'refresh_token' | 'stop';

/**
 * The close-code policy every client follows: transient failures reconnect with
 * backoff, an auth failure retries once with a fresh token (so does an expired
 * session token: reconnect at once with a fresh one), and closes that
 * would fail again identically stop. A handshake that timed out is transient (a
 * slow network or token fetch), not a refused credential, and so is a 4001 whose
 * reason (`authReason`, see {@link authFailureReasonOf}) is the gateway's own
 * trouble, not the credential's: `verifier_unavailable`, `internal_error`.
 */
export function reconnectPolicy(reason: DisconnectReason, authReason?: AuthFailureReason): ReconnectPolicy {
  // The gateway's trouble, not the credential's: try again later. (1009, `message_too_big`, is
  // one frame the gateway would not take: the calls in flight fail, the session comes back.)
  if (authReason === 'verifier_unavailable' || authReason === 'internal_error') return 'reconnect';
  switch (reason) {
    case 'auth_failed':
    case 'token_expired':
      return 'refresh_token';
    case 'forbidden':
    case 'protocol_error':
    case 'unsupported_version':
    case 'policy_violation':
    case 'replaced':
    case 'too_many_sessions':
      return 'stop';
    default:
      return 'reconnect';
  }
}

/**
 * Why the gateway refused a credential: the reason of a 4001 close, and of an
 * HTTP 401 (`error.reason`). Short, stable, machine-readable, and never a secret
 * nor the verifier's own message (that one is only logged). Each value says what
 * to do about it. Anything else a client receives (an older gateway sends
 * `auth failed`) means "refused, no reason given".
 */
export const AUTH_FAILURE_REASONS = {
  missing_token: 'no token was sent: pass one in `hello.token` or an `Authorization: Bearer` header',
  token_expired: 'the token is past its `exp`: get a fresh one',
  token_not_yet_valid: 'the token is not valid yet (`nbf` in the future): check the clocks',
  token_revoked: 'the token was revoked: sign in again',
  bad_signature: "the signature does not verify with the gateway's key (another secret, project or key set)",
  wrong_audience: "the token's `aud` is not the one the gateway expects (`JWT_AUDIENCE`, the Firebase project)",
  wrong_issuer: "the token's `iss` is not the one the gateway expects (`JWT_ISSUER`, the Firebase project)",
  invalid_subject: "the token's `sub` is missing or not a user id (1 to 128 characters)",
  alg_not_allowed:
    "the token's `alg` is not one the gateway accepts (HS256 with `JWT_SECRET`, RS256/ES256 with `JWT_JWKS_URL`)",
  unknown_key: "no key of the gateway's key set matches the token's `kid`",
  malformed_token: 'the token is not a JWT at all',
  invalid_token: 'the token was refused for another reason (see the gateway log `ws_auth_failed`)',
  verifier_unavailable:
    "the gateway could not fetch the keys to check the token (the identity provider's trouble): try again later",
  internal_error: 'the gateway failed while checking the token: try again later',
} as const;

/** One of the keys of {@link AUTH_FAILURE_REASONS}. */
export type AuthFailureReason = keyof typeof AUTH_FAILURE_REASONS;

/** The auth failure reason a 4001 close carries, or undefined when it carries none this version knows. */
export function authFailureReasonOf(reason: string): AuthFailureReason | undefined {
  // Own keys only (never `toString` and kin); no zod here, so that clients can import this module without it.
  // biome-ignore lint/suspicious/noPrototypeBuiltins: Object.hasOwn is missing from the ES2020 browsers the client targets.
  const known = Object.prototype.hasOwnProperty.call(AUTH_FAILURE_REASONS, reason);
  return known ? (reason as AuthFailureReason) : undefined;
}
