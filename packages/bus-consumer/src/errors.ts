import type { AuthFailureReason, DisconnectReason, RpcErrorCode } from '@livebus/protocol';
import { AUTH_FAILURE_REASONS } from '@livebus/protocol/client';

/** An RPC failure: a wire error from the gateway, or a local one (timeout, disconnected). */
export class RpcError extends Error {
  override readonly name = 'RpcError';
  declare readonly code: RpcErrorCode;
  declare readonly data: unknown;

  constructor(code: RpcErrorCode, message: string, data?: unknown, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.data = data;
  }
}

/** The client stopped for good because the gateway refused it in a way retrying cannot fix. */
export class FatalCloseError extends Error {
  override readonly name = 'FatalCloseError';
  /** The close code, e.g. 4001. */
  declare readonly code: number;
  declare readonly reason: DisconnectReason;
  /** For a 4001: why the gateway refused the credentials; undefined when it did not say (older gateways). */
  declare readonly authReason: AuthFailureReason | undefined;

  constructor(code: number, reason: DisconnectReason, authReason?: AuthFailureReason) {
    const why = authReason ? `${reason}: ${authReason}` : reason;
    super(`the gateway closed the connection (${code}, ${why}); not retrying`);
    this.code = code;
    this.reason = reason;
    this.authReason = authReason;
  }
}

/**
 * Why `connect()` failed, or why the client stopped:
 * - an auth failure reason (`token_expired`, `bad_signature`, ...; `auth_failed` when the gateway gave none),
 * - `not_livebus_endpoint`: the URL answered the upgrade with HTTP 404, 2xx or 3xx (Node only),
 * - `upgrade_refused`: another HTTP 4xx, e.g. 403 for an origin the gateway does not allow (Node only),
 * - `cannot_open`: the WebSocket constructor threw (a browser's SecurityError for `ws://` from an
 *   `https` page); `cause` is what it threw,
 * - another fatal close's reason (`too_many_sessions`, `forbidden`, ...),
 * - `client_closed`: `close()` was called first.
 */
export type ConnectErrorCode =
  | AuthFailureReason
  | DisconnectReason
  | 'not_livebus_endpoint'
  | 'upgrade_refused'
  | 'cannot_open'
  | 'client_closed';

/** Details of a {@link ConnectError}. */
export interface ConnectErrorDetails {
  url: string;
  /** The close code the gateway stopped the client with. */
  closeCode?: number;
  /** The HTTP status the upgrade was answered with (Node only: browsers cannot see it). */
  status?: number;
  cause?: unknown;
}

/** What `connect()` rejects with: a code to branch on, and a message a person can act on. */
export class ConnectError extends Error {
  override readonly name = 'ConnectError';
  declare readonly code: ConnectErrorCode;
  /** The URL the client was connecting to. */
  declare readonly url: string;
  declare readonly closeCode: number | undefined;
  declare readonly status: number | undefined;

  constructor(code: ConnectErrorCode, message: string, details: ConnectErrorDetails) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.code = code;
    this.url = details.url;
    this.closeCode = details.closeCode;
    this.status = details.status;
  }

  /** The error for a fatal close: the auth failure reason when there is one, else the close's reason. */
  static fromClose(error: FatalCloseError, url: string): ConnectError {
    const details = { url, closeCode: error.code, cause: error };
    if (error.reason !== 'auth_failed') return new ConnectError(error.reason, error.message, details);
    if (!error.authReason) {
      return new ConnectError('auth_failed', 'the gateway refused the credentials (it gave no reason)', details);
    }
    const advice = AUTH_FAILURE_REASONS[error.authReason].replace(/`/g, '');
    return new ConnectError(
      error.authReason,
      `the gateway refused the credentials: ${error.authReason} (${advice})`,
      details,
    );
  }

  /** The error for an upgrade answered with an HTTP status instead of 101 (seen in Node only). */
  static fromUpgrade(status: number, url: string, location?: string): ConnectError {
    const details = { url, status };
    if (status === 404 || status < 400) {
      const to = location ? ` (redirects to ${location})` : '';
      return new ConnectError(
        'not_livebus_endpoint',
        `not a livebus endpoint: HTTP ${status} from ${url}${to}`,
        details,
      );
    }
    const hint = status === 403 ? ": is this origin in the gateway's ALLOWED_ORIGINS?" : '';
    return new ConnectError(
      'upgrade_refused',
      `the gateway refused the upgrade: HTTP ${status} from ${url}${hint}`,
      details,
    );
  }
}
