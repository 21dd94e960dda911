import { AuthError, type Authenticator, type Principal } from './authenticator';
import { toPrincipal } from './principal';

/**
 * Development only (refused with NODE_ENV=production): the client names its
 * user in `hello.user_id`, or as the bearer token. A token of `service:<uid>`
 * acts as a service caller, so the service paths can be tried locally.
 */
export class NoneAuthenticator implements Authenticator {
  readonly mode = 'none' as const;

  async authenticate({
    token,
    userId,
  }: {
    token?: string | undefined;
    userId?: string | undefined;
  }): Promise<Principal> {
    if (token?.startsWith('service:')) return toPrincipal(token.slice('service:'.length) || 'service', true);
    const uid = userId ?? token;
    if (!uid)
      throw new AuthError('missing_token', 'AUTH_MODE=none needs hello.user_id or a bearer token naming the user');
    // Nothing expires in this mode; the claimed id is still held to the protocol's limits.
    return toPrincipal(uid, false);
  }
}
