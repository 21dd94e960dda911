import { createHmac, createSecretKey } from 'node:crypto';
import { errors, jwtVerify } from 'jose';
import { verifyHs256 } from './hs256';

const SECRET = 'unit-test-secret-that-is-long-enough-0001';
const KEY = createSecretKey(Buffer.from(SECRET));
const NOW_S = 1_800_000_000;
const b64 = (value: unknown) =>
  Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
const sign = (head: string, secret = SECRET) =>
  `${head}.${createHmac('sha256', secret).update(head).digest('base64url')}`;
const jwt = (payload: unknown, header: unknown = { alg: 'HS256', typ: 'JWT' }, secret = SECRET) =>
  sign(`${b64(header)}.${b64(payload)}`, secret);

type Outcome = { ok: true; payload: unknown } | { ok: false; error: string; message: string; claim?: string };

function outcomeOf(run: () => unknown): Outcome | Promise<Outcome> {
  const describe = (e: unknown): Outcome => {
    const error = e as errors.JOSEError & { claim?: string };
    return {
      ok: false,
      error: error.constructor.name,
      message: error.message,
      ...(error instanceof errors.JWTClaimValidationFailed ? { claim: error.claim } : {}),
    };
  };
  try {
    const result = run();
    if (result instanceof Promise) return result.then((payload) => ({ ok: true as const, payload }), describe);
    return { ok: true, payload: result };
  } catch (e) {
    return describe(e);
  }
}

/** Each token: what jose's jwtVerify says, and what verifyHs256 says when it decides (undefined: left to jose). */
async function compare(token: string, options: { issuer?: string; audience?: string; toleranceMs?: number } = {}) {
  const toleranceS = (options.toleranceMs ?? 5_000) / 1000;
  const jose = await outcomeOf(() =>
    jwtVerify(token, KEY, {
      algorithms: ['HS256'],
      issuer: options.issuer,
      audience: options.audience,
      clockTolerance: toleranceS,
      currentDate: new Date(NOW_S * 1000),
      requiredClaims: ['sub'],
    }).then((r) => r.payload),
  );
  let decided = true;
  const ours = outcomeOf(() => {
    const payload = verifyHs256(token, KEY, {
      issuer: options.issuer,
      audience: options.audience,
      clockToleranceS: toleranceS,
      nowMs: NOW_S * 1000 + 999,
    });
    if (payload === undefined) decided = false;
    return payload;
  }) as Outcome;
  return { jose, ours: decided ? ours : 'left to jose' };
}

describe('verifyHs256: the same verdict as jose jwtVerify on every token it decides', () => {
  const good = jwt({ sub: 'u', exp: NOW_S + 60 });
  const [h, p] = good.split('.');
  type Options = { issuer?: string; audience?: string; toleranceMs?: number };
  const rows: Array<[string, string, Options?]> = [
    ['valid', good],
    ['valid, no exp', jwt({ sub: 'u' })],
    [
      'valid, numeric claims and extras',
      jwt({ sub: 'u', iat: NOW_S - 10, nbf: NOW_S - 10, exp: NOW_S + 1, svc: true }),
    ],
    ['header without typ', jwt({ sub: 'u' }, { alg: 'HS256' })],
    ['another secret', jwt({ sub: 'u' }, undefined, 'another-secret-that-is-long-enough-xxxxx')],
    ['tampered payload', `${h}.${b64({ sub: 'admin' })}.${good.split('.')[2]}`],
    ['signature cut short', good.slice(0, -3)],
    ['empty signature', `${h}.${p}.`],
    ['payload not JSON', sign(`${h}.${b64('not json')}`)],
    ['payload an array', jwt(['sub'])],
    ['payload null', jwt(null)],
    ['empty payload', sign(`${h}.`)],
    ['no sub', jwt({ exp: NOW_S + 60 })],
    ['expired (past tolerance)', jwt({ sub: 'u', exp: NOW_S - 5 })],
    ['expired within tolerance', jwt({ sub: 'u', exp: NOW_S - 4 })],
    ['exp exactly now, no tolerance', jwt({ sub: 'u', exp: NOW_S }), { toleranceMs: 0 }],
    ['exp a second ahead, no tolerance', jwt({ sub: 'u', exp: NOW_S + 1 }), { toleranceMs: 0 }],
    ['fractional tolerance', jwt({ sub: 'u', exp: NOW_S - 2 }), { toleranceMs: 2_500 }],
    ['fractional tolerance, past', jwt({ sub: 'u', exp: NOW_S - 3 }), { toleranceMs: 2_500 }],
    ['exp a string', jwt({ sub: 'u', exp: String(NOW_S + 60) })],
    ['nbf ahead within tolerance', jwt({ sub: 'u', nbf: NOW_S + 5 })],
    ['nbf ahead past tolerance', jwt({ sub: 'u', nbf: NOW_S + 6 })],
    ['nbf a string', jwt({ sub: 'u', nbf: 'soon' })],
    ['iat a string', jwt({ sub: 'u', iat: 'then' })],
    ['iat in the future (not checked without maxTokenAge)', jwt({ sub: 'u', iat: NOW_S + 3600 })],
    ['iss and aud right', jwt({ sub: 'u', iss: 'https://idp', aud: 'lb' }), { issuer: 'https://idp', audience: 'lb' }],
    [
      'aud in a list',
      jwt({ sub: 'u', iss: 'https://idp', aud: ['x', 'lb'] }),
      { issuer: 'https://idp', audience: 'lb' },
    ],
    [
      'aud not in the list',
      jwt({ sub: 'u', iss: 'https://idp', aud: ['x'] }),
      { issuer: 'https://idp', audience: 'lb' },
    ],
    ['aud an object', jwt({ sub: 'u', iss: 'https://idp', aud: { lb: 1 } }), { issuer: 'https://idp', audience: 'lb' }],
    ['wrong iss', jwt({ sub: 'u', iss: 'https://evil', aud: 'lb' }), { issuer: 'https://idp', audience: 'lb' }],
    ['iss a list', jwt({ sub: 'u', iss: ['https://idp'], aud: 'lb' }), { issuer: 'https://idp', audience: 'lb' }],
    ['missing iss, aud and sub', jwt({ x: 1 }), { issuer: 'https://idp', audience: 'lb' }],
    ['missing aud and sub', jwt({ iss: 'https://idp' }), { issuer: 'https://idp', audience: 'lb' }],
    ['iss and aud unchecked', jwt({ sub: 'u', iss: 'https://evil', aud: 'other' })],
    // Left to jose: it must still decide these as it always did.
    ['alg none', `${b64({ alg: 'none' })}.${p}.`],
    ['alg HS512', jwt({ sub: 'u' }, { alg: 'HS512' })],
    ['alg RS256', `${b64({ alg: 'RS256' })}.${p}.c2ln`],
    ['no alg', jwt({ sub: 'u' }, { typ: 'JWT' })],
    ['crit b64', jwt({ sub: 'u' }, { alg: 'HS256', crit: ['b64'], b64: false })],
    ['crit unknown', jwt({ sub: 'u' }, { alg: 'HS256', crit: ['x'] })],
    ['b64 without crit', jwt({ sub: 'u' }, { alg: 'HS256', b64: false })],
    ['header an array', jwt({ sub: 'u' }, ['HS256'])],
    ['header not JSON', sign(`${b64('{{')}.${p}`)],
    ['two segments', 'a.b'],
    ['four segments', `${good}.x`],
    ['not base64url', '!!.@@.##'],
    ['not a token', 'not-a-token'],
    ['empty', ''],
  ];

  // Every row with its options (jest would take a missing third argument for `done`).
  const tokens: Array<[string, string, Options]> = rows.map(([what, token, options]) => [what, token, options ?? {}]);

  it.each(tokens)('%s', async (_what, token, options) => {
    const { jose, ours } = await compare(token, options);
    if (ours !== 'left to jose') expect(ours).toEqual(jose);
  });

  it('decides the ordinary tokens itself, and leaves the unusual ones to jose', async () => {
    const decided = async (token: string) => (await compare(token)).ours !== 'left to jose';
    expect(await decided(good)).toBe(true);
    expect(await decided(jwt({ sub: 'u' }, undefined, 'another-secret-that-is-long-enough-xxxxx'))).toBe(true);
    expect(await decided(jwt({ exp: NOW_S - 3600 }))).toBe(true);
    for (const unusual of [
      `${b64({ alg: 'none' })}.${p}.`,
      jwt({ sub: 'u' }, { alg: 'HS512' }),
      jwt({ sub: 'u' }, { alg: 'HS256', crit: ['b64'], b64: false }),
      jwt({ sub: 'u' }, ['HS256']),
      'a.b',
      `${good}.x`,
      '!!.@@.##',
    ]) {
      expect([unusual, await decided(unusual)]).toEqual([unusual, false]);
    }
  });
});
