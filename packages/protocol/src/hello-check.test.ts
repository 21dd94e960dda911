import fc from 'fast-check';
import { z } from 'zod';
import { clientFrame, json } from '../test/arbitraries';
import { around, edgeValues as sharedEdgeValues } from '../test/edge-values';
import { parseClientFrame, validateWith } from './codec';
import { UserIdSchema } from './common';
import { ClientFrameSchema, HelloFrameSchema } from './frames';
import { isHelloFrame, isUserId } from './hello-check';

/** zod's verdict and the hand-written one, side by side (expected equal). */
function verdicts(value: unknown) {
  return { value, zod: HelloFrameSchema.safeParse(value).success, ours: isHelloFrame(value) };
}
function expectSameVerdict(value: unknown): boolean {
  const v = verdicts(value);
  expect(v).toEqual({ value, zod: v.zod, ours: v.zod });
  return v.zod;
}

// What hello-check.ts was written for. A change to HelloFrameSchema fails here: change
// isHelloFrame to match (or send hellos through zod), then this.
const EXPECTED_SCHEMA = {
  type: 'object',
  properties: {
    type: { type: 'string', const: 'hello' },
    v: { type: 'integer', exclusiveMinimum: 0, maximum: 9007199254740991 },
    token: { type: 'string', minLength: 1, maxLength: 8192 },
    user_id: { type: 'string', minLength: 1, maxLength: 128 },
    session_id: { type: 'string', minLength: 1, maxLength: 128 },
    route: { type: 'string', maxLength: 512 },
    last_cursor: { type: 'string', pattern: '^[0-9A-Za-z_-]{1,32}:[0-9]{1,16}$' },
    app_ping: { type: 'boolean' },
  },
  required: ['type', 'v'],
  additionalProperties: false,
};

const valid = { type: 'hello', v: 1 };
const edgeValues: unknown[] = [
  ...sharedEdgeValues,
  'hello',
  'ping',
  ...around(512),
  ...around(8192),
  { type: 'hello' },
];
/** One UTF-16 unit, lone surrogates included. */
const unit16 = fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c));
const keys = ['type', 'v', 'token', 'user_id', 'session_id', 'route', 'last_cursor', 'app_ping'];

describe('isHelloFrame (the hello without zod) gives HelloFrameSchema’s verdicts', () => {
  it('HelloFrameSchema is still the schema it was written for', () => {
    const { $schema: _, ...schema } = z.toJSONSchema(HelloFrameSchema) as Record<string, unknown>;
    expect(schema).toEqual(EXPECTED_SCHEMA);
  });

  it('on every field set to each edge value, alone and beside a full valid hello', () => {
    const full = {
      type: 'hello',
      v: 1,
      token: 't',
      user_id: 'u',
      session_id: 's',
      route: '/r',
      last_cursor: 'e1:5',
      app_ping: true,
    };
    expect(expectSameVerdict(full)).toBe(true);
    const seen = { ok: 0, refused: 0 };
    for (const base of [valid, full]) {
      for (const key of keys) {
        for (const x of edgeValues) {
          seen[expectSameVerdict({ ...base, [key]: x }) ? 'ok' : 'refused']++;
          // As it arrives: through JSON (undefined drops the key).
          seen[expectSameVerdict(JSON.parse(JSON.stringify({ ...base, [key]: x }))) ? 'ok' : 'refused']++;
        }
      }
    }
    expect(Math.min(seen.ok, seen.refused)).toBeGreaterThan(200);
  });

  it('on keys it does not know, "__proto__" and inherited ones', () => {
    for (const text of [
      '{"type":"hello","v":1,"extra":1}',
      '{"type":"hello","v":1,"__proto__":{}}',
      '{"type":"hello","v":1,"__proto__":null}',
      '{"__proto__":{"type":"hello","v":1}}',
      '{"type":"hello","v":1,"constructor":{}}',
      '{"type":"hello","v":1,"toString":"x"}',
      '{"type":"hello","v":1,"Type":"hello"}',
      '{"type":"hello","v":1,"":1}',
      '{"v":1}',
      '{"type":"hello"}',
      '{"type":"hello","v":1,"v":2}',
      '{"type":"hello","v":1,"v":0}',
    ]) {
      expectSameVerdict(JSON.parse(text));
    }
    expectSameVerdict(Object.assign(Object.create({ extra: 1 }), valid));
    expectSameVerdict(Object.assign(Object.create({ v: 1 }), { type: 'hello' }));
    for (const x of [null, undefined, 1, 'hello', [], [valid], new Date(0)]) expectSameVerdict(x);
  });

  it('on hellos made at random, valid and with one field replaced, deleted or added', () => {
    const hello = clientFrame.filter((f) => f.type === 'hello');
    const field = fc.constantFrom(...keys, 'extra', 'id', 'ts', 'method');
    const replacement = fc.oneof(fc.constantFrom(...edgeValues), json, fc.string(), fc.string({ unit: 'binary' }));
    const seen = { ok: 0, refused: 0 };
    fc.assert(
      fc.property(hello, fc.option(fc.tuple(field, fc.option(replacement, { nil: undefined }))), (frame, change) => {
        const value: Record<string, unknown> = { ...frame };
        if (change) {
          const [key, x] = change;
          if (x === undefined) delete value[key];
          else value[key] = x;
        }
        seen[expectSameVerdict(JSON.parse(JSON.stringify(value))) ? 'ok' : 'refused']++;
      }),
      { numRuns: 5000 },
    );
    expect(Math.min(seen.ok, seen.refused)).toBeGreaterThan(500);
  });

  it('on strings of any length and content in every string field', () => {
    const text = fc.oneof(
      fc.string({ maxLength: 600 }),
      fc.string({ unit: 'binary', maxLength: 600 }),
      fc.string({ unit: unit16, maxLength: 600 }),
      fc.string({ unit: fc.constantFrom('\ud83d', '\ude00', '\u{1F600}', 'x'), maxLength: 600 }),
      fc.stringMatching(/^[0-9A-Za-z_-]{0,34}:[0-9]{0,18}$/),
    );
    fc.assert(
      fc.property(fc.constantFrom('token', 'user_id', 'session_id', 'route', 'last_cursor'), text, (key, x) => {
        expectSameVerdict({ ...valid, [key]: x });
      }),
      { numRuns: 5000 },
    );
  });

  it('on any JSON value, and any JSON object of type hello', () => {
    fc.assert(
      fc.property(json, (value) => {
        expectSameVerdict(value);
        if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
          expectSameVerdict({ ...value, type: 'hello' });
          expectSameVerdict({ ...value, type: 'hello', v: 1 });
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe('isUserId gives UserIdSchema’s verdicts', () => {
  it('on edge values and strings of any length and content', () => {
    const { $schema: _, ...schema } = z.toJSONSchema(UserIdSchema) as Record<string, unknown>;
    expect(schema).toEqual({ type: 'string', minLength: 1, maxLength: 128 });
    for (const x of edgeValues) expect({ x, ok: isUserId(x) }).toEqual({ x, ok: UserIdSchema.safeParse(x).success });
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 300 }),
          fc.string({ unit: unit16, maxLength: 300 }),
          fc.string({ unit: 'binary', maxLength: 300 }),
        ),
        (x) => expect({ x, ok: isUserId(x) }).toEqual({ x, ok: UserIdSchema.safeParse(x).success }),
      ),
      { numRuns: 3000 },
    );
  });
});

describe('parseClientFrame with the hand-written hello check', () => {
  it('gives what zod gives, on every client frame, valid or not', () => {
    const hello = clientFrame.filter((f) => f.type === 'hello');
    const anyFrame = fc.oneof(
      clientFrame,
      hello.chain((f) =>
        fc
          .constantFrom(...keys, 'extra')
          .chain((key) => fc.constantFrom(...edgeValues).map((x) => ({ ...f, [key]: x }))),
      ),
    );
    fc.assert(
      fc.property(anyFrame, (frame) => {
        const text = JSON.stringify(frame);
        const zod = validateWith(ClientFrameSchema, JSON.parse(text));
        expect({ text, parsed: parseClientFrame(text) }).toEqual({ text, parsed: zod });
        expect(parseClientFrame(Buffer.from(text))).toEqual(zod);
      }),
      { numRuns: 3000 },
    );
  });

  it('refuses a bad hello with zod’s issues', () => {
    const bad = parseClientFrame('{"type":"hello","v":1,"token":""}');
    expect(bad).toEqual(validateWith(ClientFrameSchema, { type: 'hello', v: 1, token: '' }));
    expect(bad.ok || bad.error.issues.map((i) => i.path)).toEqual(['token']);
  });
});
