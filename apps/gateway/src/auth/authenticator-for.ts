import type { App } from 'firebase-admin/app';
import type { GatewayConfig } from '../config';
import type { Authenticator } from './authenticator';
import { FirebaseAuthenticator } from './firebase-authenticator';
import { JwtAuthenticator } from './jwt-authenticator';
import { NoneAuthenticator } from './none-authenticator';

/** Options of {@link authenticatorFor}. */
export interface AuthenticatorForOptions {
  /**
   * The firebase-admin app that verifies ID tokens when `authMode` is `firebase`.
   * Passed in rather than created here because creating one looks up Google
   * credentials and must be deleted on shutdown: `composePorts` (compose.ts) does both.
   * @default undefined (AUTH_MODE=firebase then throws)
   */
  firebaseApp?: App | Promise<App> | undefined;
  /** Told when a refresh of the JWKS held already fails (the keys held keep verifying meanwhile). */
  onJwksRefreshError?: (message: string) => void;
}

/**
 * The authenticator `config.authMode` names: the one place that chooses it, for
 * both `composePorts` (the CLI) and `createGateway` without `auth` in its ports, so
 * the two cannot disagree. Never silently weaker than the configuration says:
 * a mode whose keys are missing throws instead of accepting anything.
 *
 * @throws TypeError when `jwt` has neither `jwtSecret` nor `jwtJwksUrl`, or
 *   `firebase` has no `firebaseApp`
 */
export function authenticatorFor(config: GatewayConfig, options: AuthenticatorForOptions = {}): Authenticator {
  switch (config.authMode) {
    case 'none':
      return new NoneAuthenticator();
    case 'jwt':
      if (!config.jwtSecret && !config.jwtJwksUrl) {
        throw new TypeError('authMode jwt needs config.jwtSecret or config.jwtJwksUrl');
      }
      return new JwtAuthenticator({
        secret: config.jwtSecret,
        jwksUrl: config.jwtJwksUrl,
        issuer: config.jwtIssuer,
        audience: config.jwtAudience,
        requireExp: config.jwtRequireExp,
        serviceRoleClaim: config.serviceRoleClaim,
        clockToleranceMs: config.tokenClockToleranceMs,
        keepClaims: claimsRead(config),
        ...(options.onJwksRefreshError ? { onJwksRefreshError: options.onJwksRefreshError } : {}),
      });
    case 'firebase':
      if (!options.firebaseApp) {
        throw new TypeError(
          'authMode firebase needs a firebase-admin app: pass ports.auth (a FirebaseAuthenticator); composePorts(config, logger) makes one',
        );
      }
      return new FirebaseAuthenticator(options.firebaseApp, config.serviceRoleClaim, claimsRead(config));
  }
}

/**
 * The claims the gateway reads from a session's principal after its hello: LISTENERS_FILE's
 * `company.membership.claim`, when set. A principal keeps these and no other.
 */
export function claimsRead(config: Pick<GatewayConfig, 'listeners'>): string[] {
  const claim = config.listeners?.company?.membership.claim;
  return claim === undefined ? [] : [claim];
}
