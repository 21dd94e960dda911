import { type AuthFrame, CloseCode } from '@livebus/protocol';
import { AuthError, type Principal } from '../auth/authenticator';
import type { ConnectionHandlerDeps, CoreContext } from './context';
import type { Session } from './session';
import { TokenLifetime } from './token-lifetime';

/** The handler's {@link TokenLifetime}: asks for a fresh token before it expires, closes 4011 once it has. */
export function createSessionLifetime({ config, hooks }: Pick<ConnectionHandlerDeps, 'config' | 'hooks'>) {
  return new TokenLifetime({
    refreshLeadMs: config.tokenRefreshLeadMs,
    clockToleranceMs: config.tokenClockToleranceMs,
    graceMs: config.tokenExpiryGraceMs,
    onExpiring: (session, expiresAtMs) => {
      session.connection.send({
        type: 'notice',
        kind: 'token_expiring',
        message: 'token expires soon; send an auth frame with a fresh token',
        expires_at_ms: expiresAtMs,
      });
    },
    onExpired: (session) => {
      hooks.emit('session.token_expired', { uid: session.uid, sessionId: session.id });
      session.connection.close(CloseCode.TokenExpired, 'token expired', 'token_expired');
    },
  });
}

/** A fresh token on the open socket (`auth` frame): same user, the session lives on; another user, close 4003. */
export async function refreshToken(ctx: CoreContext, session: Session, frame: AuthFrame): Promise<void> {
  const conn = session.connection;
  let principal: Principal;
  try {
    principal = await ctx.auth.authenticate({ token: frame.token });
  } catch (error) {
    ctx.hooks.emit('session.token_refresh_failed', {
      uid: session.uid,
      sessionId: session.id,
      reason: error instanceof AuthError ? error.reason : 'error',
      error: error instanceof Error ? error.message : String(error),
    });
    // The session keeps its current deadline: the client may try again until then.
    conn.send({ type: 'error', code: 'not_authenticated', message: 'the fresh token was refused' });
    return;
  }
  if (conn.session !== session || conn.phase !== 'open') return;
  if (principal.uid !== session.uid) {
    ctx.hooks.emit('session.token_refresh_failed', { uid: session.uid, sessionId: session.id, reason: 'other_user' });
    conn.close(CloseCode.Forbidden, 'forbidden');
    return;
  }
  session.principal = principal;
  ctx.lifetime.track(session);
  ctx.hooks.emit('session.token_refreshed', {
    uid: session.uid,
    sessionId: session.id,
    ...(principal.expiresAtMs === undefined ? {} : { expiresAtMs: principal.expiresAtMs }),
  });
  conn.send({
    type: 'notice',
    kind: 'token_refreshed',
    message: 'token refreshed',
    ...(principal.expiresAtMs === undefined ? {} : { expires_at_ms: principal.expiresAtMs }),
  });
}
