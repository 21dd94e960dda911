import { defaultConfig, type GatewayConfig } from '../config';
import { authenticatorFor, claimsRead } from './authenticator-for';
import { signJwt } from './jwt-authenticator';

const SECRET = 'unit-test-secret-that-is-long-enough-0002';

describe('authenticatorFor', () => {
  it('reads one claim after the hello, the company membership claim, and only when it is configured', () => {
    expect(claimsRead({ listeners: undefined })).toEqual([]);
    const company = { listeners: { company: { membership: { claim: 'company_ids' } } } } as unknown as Pick<
      GatewayConfig,
      'listeners'
    >;
    expect(claimsRead(company)).toEqual(['company_ids']);
  });

  it('makes authenticators whose principals keep no claim the gateway does not read', async () => {
    const auth = authenticatorFor(defaultConfig({ authMode: 'jwt', jwtSecret: SECRET }));
    const token = signJwt(
      { sub: 'u1', email: 'a@b.c', company_ids: ['acme'], exp: Math.floor(Date.now() / 1000) + 60 },
      SECRET,
    );
    const principal = await auth.authenticate({ token });
    expect(principal.uid).toBe('u1');
    expect(principal.claims).toBeUndefined();
  });
});
