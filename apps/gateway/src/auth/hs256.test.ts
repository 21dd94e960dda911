import { createHmac, createSecretKey } from 'node:crypto';
import { errors, jwtVerify } from 'jose';
import josePackage from 'jose/package.json';
import { AuthError } from './authenticator';
import { verifyHs256 } from './hs256';
import { JwtAuthenticator } from './jwt-authenticator';

const SECRET = 'unit-test-secret-that-is-long-enough-0001';
const KEY = createSecretKey(Buffer.from(SECRET));
/** The secret as jose took it before hs256.ts: bytes, made into a key per call. The reference. */
const SECRET_BYTES = new TextEncoder().encode(SECRET);
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

type Options = { issuer?: string; audience?: string; toleranceMs?: number };

/**
 * Each token: what jose's jwtVerify alone says (the reference: the secret's bytes, as the
 * authenticator ran before hs256.ts), and what JwtAuthenticator's path says: verifyHs256,
 * or when it leaves the token (`decided: false`), jwtVerify with the KeyObject.
 */
async function compare(token: string, options: Options = {}) {
  const toleranceS = (options.toleranceMs ?? 5_000) / 1000;
  const joseOptions = (nowMs: number) => ({
    algorithms: ['HS256'],
    issuer: options.issuer,
    audience: options.audience,
    clockTolerance: toleranceS,
    currentDate: new Date(nowMs),
    requiredClaims: ['sub'],
  });
  const jose = await outcomeOf(() => jwtVerify(token, SECRET_BYTES, joseOptions(NOW_S * 1000)).then((r) => r.payload));
  let decided = true;
  const ours = await outcomeOf(() => {
    const nowMs = NOW_S * 1000 + 999;
    const payload = verifyHs256(token, KEY, {
      issuer: options.issuer,
      audience: options.audience,
      clockToleranceS: toleranceS,
      nowMs,
    });
    if (payload !== undefined) return payload;
    decided = false;
    return jwtVerify(token, KEY, joseOptions(nowMs)).then((r) => r.payload);
  });
  return { jose, ours, decided };
}

/** A token signed over `header.payload` as written (strings are taken as they are, not as JSON). */
const raw = (payload: string, header = '{"alg":"HS256","typ":"JWT"}') => jwt(payload, header);

/** The first of `u0`, `u1`… whose token's signature matches `re`: a row whose point needs such a signature. */
function tokenWithSignature(re: RegExp): string {
  for (let i = 0; ; i++) {
    const token = jwt({ sub: `u${i}`, exp: NOW_S + 60 });
    if (re.test(token.split('.')[2] as string)) return token;
  }
}

/**
 * Tokens verifyHs256 leaves to jose, with JwtAuthenticator's verdict: the user it accepts,
 * or the failure code the peer is told. Also compared with jose alone above.
 */
const LEFT_TO_JOSE: Array<[string, string, string]> = (() => {
  const p = b64({ sub: 'u', exp: NOW_S + 60 });
  const good = jwt({ sub: 'u', exp: NOW_S + 60 });
  return [
    ['alg none', `${b64({ alg: 'none' })}.${p}.`, 'alg_not_allowed'],
    // Signed right with HS512 and the same secret: refused for its alg, never verified.
    [
      'alg HS512',
      (() => {
        const head = `${b64({ alg: 'HS512' })}.${p}`;
        return `${head}.${createHmac('sha512', SECRET).update(head).digest('base64url')}`;
      })(),
      'alg_not_allowed',
    ],
    ['alg HS512, signed with SHA-256', jwt({ sub: 'u' }, { alg: 'HS512' }), 'alg_not_allowed'],
    ['alg RS256', `${b64({ alg: 'RS256' })}.${p}.c2ln`, 'alg_not_allowed'],
    ['no alg', jwt({ sub: 'u' }, { typ: 'JWT' }), 'malformed_token'],
    ['alg a number', jwt({ sub: 'u' }, { alg: 256 }), 'malformed_token'],
    // jose knows b64 (RFC 7797) but a JWT may not use an unencoded payload.
    ['crit b64 with b64 false', jwt({ sub: 'u' }, { alg: 'HS256', crit: ['b64'], b64: false }), 'malformed_token'],
    // b64 true is the default encoding: an ordinary token with a crit jose understands.
    ['crit b64 with b64 true', jwt({ sub: 'u' }, { alg: 'HS256', crit: ['b64'], b64: true }), 'accepted u'],
    ['crit b64 without b64', jwt({ sub: 'u' }, { alg: 'HS256', crit: ['b64'] }), 'malformed_token'],
    ['crit unknown', jwt({ sub: 'u' }, { alg: 'HS256', crit: ['x'] }), 'invalid_token'],
    ['crit empty', jwt({ sub: 'u' }, { alg: 'HS256', crit: [] }), 'malformed_token'],
    // Without crit, b64 is an unknown header parameter and is ignored: the payload is base64url as usual.
    ['b64 false without crit', jwt({ sub: 'u' }, { alg: 'HS256', b64: false }), 'accepted u'],
    ['b64 true without crit', jwt({ sub: 'u' }, { alg: 'HS256', b64: true }), 'accepted u'],
    ['header an array', jwt({ sub: 'u' }, ['HS256']), 'malformed_token'],
    ['header an array holding an object', jwt({ sub: 'u' }, [{ alg: 'HS256' }]), 'malformed_token'],
    ['header null', jwt({ sub: 'u' }, null), 'malformed_token'],
    ['header a string', jwt({ sub: 'u' }, JSON.stringify('HS256')), 'malformed_token'],
    ['header not JSON', sign(`${b64('{{')}.${p}`), 'malformed_token'],
    ['two segments', 'a.b', 'malformed_token'],
    ['four segments', `${good}.x`, 'malformed_token'],
    ['five segments (JWE shape)', `${good}.x.y`, 'malformed_token'],
    ['not base64url', '!!.@@.##', 'malformed_token'],
    ['not a token', 'not-a-token', 'malformed_token'],
    // jose: JWSInvalid; the authenticator says so before either verifier runs.
    ['empty', '', 'missing_token'],
  ];
})();

describe('verifyHs256: the same verdict as jose jwtVerify on every token', () => {
  const good = jwt({ sub: 'u', exp: NOW_S + 60 });
  const [h, p, s] = good.split('.') as [string, string, string];
  /** A 32-byte HMAC is 43 base64url characters: the last one carries 4 bits and 2 spare ones. */
  const spareBitsSet = `${h}.${p}.${s.slice(0, -1)}${String.fromCharCode((s.at(-1) as string).charCodeAt(0) + 1)}`;
  const dashed = tokenWithSignature(/-/);
  const underscored = tokenWithSignature(/_/);
  const toStandardBase64 = (token: string) =>
    token.replace(/\.([^.]*)$/, (m) => m.replace(/-/g, '+').replace(/_/g, '/'));
  const withSignature = (signature: string) => `${h}.${p}.${signature}`;
  const rows: Array<[string, string, Options?]> = [
    ['valid', good],
    ['valid, no exp', jwt({ sub: 'u' })],
    [
      'valid, numeric claims and extras',
      jwt({ sub: 'u', iat: NOW_S - 10, nbf: NOW_S - 10, exp: NOW_S + 1, svc: true }),
    ],
    ['header without typ', jwt({ sub: 'u' }, { alg: 'HS256' })],
    ['another secret', jwt({ sub: 'u' }, undefined, 'another-secret-that-is-long-enough-xxxxx')],
    ['tampered payload', `${h}.${b64({ sub: 'admin' })}.${s}`],
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
    // The signature's encoding: Node's base64url decoder (jose's too) is lenient.
    ['signature padded with =', withSignature(`${s}=`)],
    ['signature padded with ==', withSignature(`${s}==`)],
    ['signature in standard base64 (+ for -)', toStandardBase64(dashed)],
    ['signature in standard base64 (/ for _)', toStandardBase64(underscored)],
    ['signature with a space inside', withSignature(`${s.slice(0, 10)} ${s.slice(10)}`)],
    ['signature with a newline inside', withSignature(`${s.slice(0, 10)}\n${s.slice(10)}`)],
    ['signature with a trailing space', withSignature(`${s} `)],
    ['signature with a leading space', withSignature(` ${s}`)],
    ['signature with its spare trailing bits set', spareBitsSet],
    ['signature with one character more', withSignature(`${s}A`)],
    ['signature with a character outside base64', withSignature(`${s.slice(0, -1)}!`)],
    ['header segment with a space inside (signed as written)', sign(`${h.slice(0, 4)} ${h.slice(4)}.${p}`)],
    // What JSON.parse makes of odd JSON.
    ['duplicate alg in the header, HS256 last', raw(b64({ sub: 'u' }), '{"alg":"none","alg":"HS256"}')],
    ['duplicate alg in the header, HS256 first', raw(b64({ sub: 'u' }), '{"alg":"HS256","alg":"none"}')],
    ['duplicate sub in the payload', raw('{"sub":"u","sub":"admin"}')],
    ['__proto__ in the payload, holding sub', raw('{"__proto__":{"sub":"x"}}')],
    ['__proto__ in the payload, holding a claim', raw('{"sub":"u","__proto__":{"svc":true}}')],
    ['__proto__ in the header, holding crit', raw(b64({ sub: 'u' }), '{"__proto__":{"crit":["x"]},"alg":"HS256"}')],
    ['BOM before the payload', raw('\ufeff{"sub":"u"}')],
    ['BOM before the header', raw(b64({ sub: 'u' }), '\ufeff{"alg":"HS256"}')],
    ['payload with a trailing newline', raw('{"sub":"u"}\n')],
    ['exp 1e400 (Infinity)', raw('{"sub":"u","exp":1e400}')],
    ['exp -1e400 (-Infinity)', raw('{"sub":"u","exp":-1e400}')],
    ['exp null', raw('{"sub":"u","exp":null}')],
    ['nbf null', raw('{"sub":"u","nbf":null}')],
    ['iat null', raw('{"sub":"u","iat":null}')],
    ['sub null', raw('{"sub":null}')],
    ['iss null', raw('{"sub":"u","iss":null,"aud":"lb"}'), { issuer: 'https://idp', audience: 'lb' }],
    ['aud null', raw('{"sub":"u","iss":"https://idp","aud":null}'), { issuer: 'https://idp', audience: 'lb' }],
    ['fractional nbf past tolerance', raw(`{"sub":"u","nbf":${NOW_S + 5.5}}`)],
    ['fractional exp within tolerance', raw(`{"sub":"u","exp":${NOW_S - 4.5}}`)],
    // Left to jose (verifyHs256 returns undefined): decided by jwtVerify with the KeyObject.
    ...LEFT_TO_JOSE.map(([what, token]): [string, string] => [what, token]),
  ];

  // Every row with its options (jest would take a missing third argument for `done`).
  const tokens: Array<[string, string, Options]> = rows.map(([what, token, options]) => [what, token, options ?? {}]);

  it.each(tokens)('%s', async (_what, token, options) => {
    const { jose, ours } = await compare(token, options);
    expect(ours).toEqual(jose);
  });

  it('decides the ordinary tokens itself, and leaves the unusual ones to jose', async () => {
    const decided = async (token: string) => (await compare(token)).decided;
    expect(await decided(good)).toBe(true);
    expect(await decided(jwt({ sub: 'u' }, undefined, 'another-secret-that-is-long-enough-xxxxx'))).toBe(true);
    expect(await decided(jwt({ exp: NOW_S - 3600 }))).toBe(true);
    for (const [what, unusual] of LEFT_TO_JOSE) {
      expect([what, await decided(unusual)]).toEqual([what, false]);
    }
  });
});

describe('JwtAuthenticator on the tokens verifyHs256 leaves to jose', () => {
  const auth = new JwtAuthenticator({ secret: SECRET, serviceRoleClaim: 'svc', now: () => NOW_S * 1000 });

  it.each(LEFT_TO_JOSE.map(([what, token, verdict]) => [what, verdict, token]))(
    '%s: %s',
    async (_what, verdict, token) => {
      const outcome = await auth.authenticate({ token }).then(
        (principal) => `accepted ${principal.uid}`,
        (e: unknown) => (e instanceof AuthError ? e.code : `not an AuthError: ${String(e)}`),
      );
      expect(outcome).toBe(verdict);
    },
  );
});

describe('jose, the verifier verifyHs256 copies', () => {
  // verifyHs256 copies jose 5.10's jwtVerify (checks, their order, errors, base64url leniency).
  // package.json pins jose to ~5.10.0; if it is bumped to another minor or major, this fails
  // so that someone compares hs256.ts with the new jwtVerify before changing the line below.
  it('is jose 5.10.x (review hs256.ts against the new jwtVerify before changing this)', () => {
    const [major, minor] = josePackage.version.split('.');
    expect(`jose ${major}.${minor}`).toBe('jose 5.10');
  });
});
