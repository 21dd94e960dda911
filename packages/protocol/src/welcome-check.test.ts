import fc from 'fast-check';
import { z } from 'zod';
import { json, serverFrame } from '../test/arbitraries';
import { edgeValues as sharedEdgeValues } from '../test/edge-values';
import { parseServerFrame as clientParseServerFrame } from './client';
import { parseServerFrame } from './codec';
import { SessionIdSchema } from './common';
import { WelcomeFrameSchema } from './frames';
import { isSessionId } from './hello-check';
import { isWelcomeFrame } from './welcome-check';

/** zod's verdict and the hand-written one, side by side (expected equal). */
function expectSameVerdict(value: unknown): boolean {
  const zod = WelcomeFrameSchema.safeParse(value).success;
  expect({ value, ours: isWelcomeFrame(value) }).toEqual({ value, ours: zod });
  return zod;
}

// What welcome-check.ts was written for. A change to WelcomeFrameSchema fails here: change
// isWelcomeFrame to match, then this.
const positiveInt = { type: 'integer', exclusiveMinimum: 0, maximum: 9007199254740991 };
const EXPECTED_SCHEMA = {
  type: 'object',
  properties: {
    type: { type: 'string', const: 'welcome' },
    v: { type: 'number', const: 1 },
    session_id: { type: 'string', minLength: 1, maxLength: 128 },
    user_id: { type: 'string', minLength: 1, maxLength: 128 },
    instance_id: { type: 'string' },
    heartbeat: {
      type: 'object',
      properties: { ping_interval_ms: positiveInt, ping_timeout_ms: positiveInt },
      required: ['ping_interval_ms', 'ping_timeout_ms'],
      additionalProperties: false,
    },
    resume: {
      type: 'object',
      properties: {
        status: { type: 'string', enum: ['fresh', 'resumed', 'gap'] },
        cursor: { type: 'string', pattern: '^[0-9A-Za-z_-]{1,32}:[0-9]{1,16}$' },
        replayed: { type: 'integer', minimum: 0, maximum: 9007199254740991 },
      },
      required: ['status', 'cursor', 'replayed'],
      additionalProperties: false,
    },
  },
  required: ['type', 'v', 'session_id', 'user_id', 'instance_id', 'heartbeat', 'resume'],
  additionalProperties: false,
};

const valid = {
  type: 'welcome',
  v: 1,
  session_id: 's1',
  user_id: 'u1',
  instance_id: 'gw-1',
  heartbeat: { ping_interval_ms: 20_000, ping_timeout_ms: 60_000 },
  resume: { status: 'fresh', cursor: 'e1:0', replayed: 0 },
};
const edgeValues: unknown[] = [
  ...sharedEdgeValues,
  'welcome',
  'hello',
  'fresh',
  'resumed',
  'gap',
  'Fresh',
  { ping_interval_ms: 1, ping_timeout_ms: 1 },
  { status: 'gap', cursor: 'e2:7', replayed: 3 },
];
/** Where a value can be put: a top-level key, or a key of `heartbeat` or `resume`. */
const places: Array<[string] | [string, string]> = [
  ...Object.keys(valid).map((k) => [k] as [string]),
  ['heartbeat', 'ping_interval_ms'],
  ['heartbeat', 'ping_timeout_ms'],
  ['resume', 'status'],
  ['resume', 'cursor'],
  ['resume', 'replayed'],
  ['extra'],
  ['heartbeat', 'extra'],
  ['resume', 'extra'],
];
/** A copy of `valid` with `x` at `place` (undefined: the key deleted). */
function withValue(place: [string] | [string, string], x: unknown): Record<string, unknown> {
  const copy = structuredClone(valid) as Record<string, unknown>;
  const [first, second] = place;
  const target = second === undefined ? copy : (copy[first] as Record<string, unknown>);
  const key = second ?? first;
  if (x === undefined) delete target[key];
  else target[key] = x;
  return copy;
}

describe('isWelcomeFrame (the welcome without the checker) gives WelcomeFrameSchema’s verdicts', () => {
  it('WelcomeFrameSchema is still the schema it was written for', () => {
    const { $schema: _, ...schema } = z.toJSONSchema(WelcomeFrameSchema) as Record<string, unknown>;
    expect(schema).toEqual(EXPECTED_SCHEMA);
  });

  it('on every field, nested ones included, set to each edge value or deleted', () => {
    expect(expectSameVerdict(valid)).toBe(true);
    const seen = { ok: 0, refused: 0 };
    for (const place of places) {
      for (const x of edgeValues) {
        seen[expectSameVerdict(withValue(place, x)) ? 'ok' : 'refused']++;
        seen[expectSameVerdict(JSON.parse(JSON.stringify(withValue(place, x)))) ? 'ok' : 'refused']++;
      }
    }
    expect(Math.min(seen.ok, seen.refused)).toBeGreaterThan(100);
  });

  it('on keys it does not know, "__proto__" and inherited ones', () => {
    const text = JSON.stringify(valid);
    for (const extra of [
      '"extra":1',
      '"__proto__":{}',
      '"constructor":{}',
      '"toString":"x"',
      '"Type":"welcome"',
      '"type v":1',
      '" v ":1',
      '"":1',
    ]) {
      expectSameVerdict(JSON.parse(`${text.slice(0, -1)},${extra}}`));
    }
    expectSameVerdict(Object.assign(Object.create({ extra: 1 }), valid));
    expectSameVerdict(Object.assign(Object.create({ resume: valid.resume }), { ...valid, resume: undefined }));
    for (const x of [null, undefined, 1, 'welcome', [], [valid], new Date(0)]) expectSameVerdict(x);
  });

  it('on welcomes made at random, valid and with one field replaced, deleted or added', () => {
    const welcome = serverFrame.filter((f) => f.type === 'welcome');
    const place = fc.constantFrom(...places);
    const replacement = fc.oneof(fc.constantFrom(...edgeValues), json, fc.string(), fc.string({ unit: 'binary' }));
    const seen = { ok: 0, refused: 0 };
    fc.assert(
      fc.property(welcome, fc.option(fc.tuple(place, fc.option(replacement, { nil: undefined }))), (frame, change) => {
        const value = structuredClone(frame) as Record<string, unknown>;
        if (change) {
          const [[first, second], x] = change;
          const target = second === undefined ? value : (value[first] as Record<string, unknown>);
          const key = second ?? first;
          if (x === undefined) delete target[key];
          else target[key] = x;
        }
        const text = JSON.stringify(value);
        const ok = expectSameVerdict(JSON.parse(text));
        // And through both parsers: the client's (this check, then the checker) and the zod one
        // (their messages for a refused frame differ; the verdict and the accepted value do not).
        const ours = clientParseServerFrame(text);
        const zod = parseServerFrame(text);
        expect({ text, ours: ours.ok, zod: zod.ok }).toEqual({ text, ours: ok, zod: ok });
        if (zod.ok) expect(ours).toEqual(zod);
        seen[ok ? 'ok' : 'refused']++;
      }),
      { numRuns: 4000 },
    );
    expect(Math.min(seen.ok, seen.refused)).toBeGreaterThan(500);
  });

  it('on strings of any length and content in every string field', () => {
    const text = fc.oneof(
      fc.string({ maxLength: 300 }),
      fc.string({ unit: 'binary', maxLength: 300 }),
      fc.string({ unit: fc.constantFrom('\ud83d', '\ude00', '\u{1F600}', 'x'), maxLength: 300 }),
      fc.stringMatching(/^[0-9A-Za-z_-]{0,34}:[0-9]{0,18}$/),
    );
    const stringPlaces = places.filter(([a, b]) => ['session_id', 'user_id', 'instance_id', 'type'].includes(a) || b);
    fc.assert(
      fc.property(fc.constantFrom(...stringPlaces), text, (place, x) => {
        expectSameVerdict(withValue(place, x));
      }),
      { numRuns: 4000 },
    );
  });

  it('on any JSON value, and any JSON object of type welcome', () => {
    fc.assert(
      fc.property(json, (value) => {
        expectSameVerdict(value);
        if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
          expectSameVerdict({ ...value, type: 'welcome' });
          expectSameVerdict({ ...valid, ...value });
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe('isSessionId gives SessionIdSchema’s verdicts', () => {
  it('on edge values and strings of any length and content', () => {
    const { $schema: _, ...schema } = z.toJSONSchema(SessionIdSchema) as Record<string, unknown>;
    expect(schema).toEqual({ type: 'string', minLength: 1, maxLength: 128 });
    for (const x of edgeValues)
      expect({ x, ok: isSessionId(x) }).toEqual({ x, ok: SessionIdSchema.safeParse(x).success });
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 300 }), fc.string({ unit: 'binary', maxLength: 300 })), (x) =>
        expect({ x, ok: isSessionId(x) }).toEqual({ x, ok: SessionIdSchema.safeParse(x).success }),
      ),
      { numRuns: 2000 },
    );
  });
});
