import { startGateway } from './helpers';
import { startCli } from './task-processes';

// Token checks that can be bypassed are refused in production where they are read, at start:
// the CLI stops with exit 78 (EX_CONFIG) and a line naming the variable, before it listens.
describe('production refuses weaker token verification at start', () => {
  const production = { NODE_ENV: 'production', ADMIN_TOKEN: 'config-refusals-admin-0001', PORT: '0' };

  it.each([
    ['JWT_JWKS_URL', { AUTH_MODE: 'jwt', JWT_JWKS_URL: 'http://idp.example.com/.well-known/jwks.json' }],
    [
      'FIREBASE_AUTH_EMULATOR_HOST',
      { AUTH_MODE: 'firebase', FIREBASE_PROJECT_ID: 'demo', FIREBASE_AUTH_EMULATOR_HOST: '127.0.0.1:9099' },
    ],
  ])('%s: exits 78 naming the variable', async (variable, env) => {
    const p = startCli([], { ...production, ...env }, { exits: true });
    expect(await p.exited).toBe(78);
    expect(p.stderr()).toContain(`livebus-gateway: invalid configuration:\n  ${variable}: `);
  });
});

// Allowed (staging is common), yet no production refusal applies: a typo like `prod` is said at start.
describe('a NODE_ENV other than production, development or test', () => {
  it('is warned of at start (gateway_config_warning, variable NODE_ENV); the known ones are not', async () => {
    for (const [nodeEnv, warned] of [
      ['staging', true],
      ['production', false],
      ['development', false],
      ['test', false],
    ] as const) {
      const t = await startGateway({ nodeEnv, adminToken: 'config-refusals-admin-0001' });
      try {
        const variables = t.logs.of('gateway_config_warning').map((l) => l.variable);
        expect({ nodeEnv, warned: variables.includes('NODE_ENV') }).toEqual({ nodeEnv, warned });
      } finally {
        await t.close();
      }
    }
  });
});
