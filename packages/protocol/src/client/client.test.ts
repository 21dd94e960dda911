import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { z } from 'zod';
import { clientFrame, json, serverFrame } from '../../test/arbitraries';
import * as zodSide from '../codec';
import { clientFrameExamples, methodExamples, serverFrameExamples } from '../examples';
import { wireSchemas } from '../json-schema';
import { RPC_METHODS } from '../methods';
import { validateRpcResult as zodValidateRpcResult } from '../rpc';
import { checkJson } from './check';
import { checkClientFrame, parseServerFrame, serializeClientFrame, validateRpcResult } from './index';

// Values that sit on the schemas' edges: empty and over-long strings, negative, fractional,
// unsafe and non-finite numbers, and the wrong kinds.
const edgy = fc.constantFrom<unknown>(
  '',
  'x',
  'x'.repeat(65),
  'x'.repeat(129),
  'e:1',
  'not a cursor',
  -1,
  0,
  0.5,
  1,
  101,
  2 ** 53,
  null,
  true,
  [],
  {},
  [1],
  { a: 1 },
  'welcome',
  'event',
  'rpc_result',
  'task.progress_update',
  'fresh',
  'internal',
);
const replacement = fc.oneof(edgy, json);

type Path = Array<string | number>;
function pathsOf(value: unknown, at: Path = []): Path[] {
  const out: Path[] = [at];
  if (value === null || typeof value !== 'object') return out;
  for (const [k, v] of Object.entries(value)) out.push(...pathsOf(v, [...at, Array.isArray(value) ? Number(k) : k]));
  return out;
}

type Op = { kind: 'replace'; with: unknown } | { kind: 'delete' } | { kind: 'add'; key: string; with: unknown };
/** One change to a copy of `value` at the `pick`-th of its paths: replace, delete, or add a key. */
function mutate(value: unknown, pick: number, op: Op): unknown {
  const copy = structuredClone(value);
  const paths = pathsOf(copy);
  const path = paths[pick % paths.length] as Path;
  const at = (p: Path) =>
    p.reduce<unknown>((v, k) => (v as Record<string | number, unknown>)[k], copy) as Record<string | number, unknown>;
  if (op.kind === 'add') {
    const target = at(path);
    if (target !== null && typeof target === 'object' && !Array.isArray(target)) target[op.key] = op.with;
    return copy;
  }
  if (path.length === 0) return op.kind === 'replace' ? op.with : copy;
  const parent = at(path.slice(0, -1));
  const key = path[path.length - 1] as string | number;
  if (op.kind === 'replace') parent[key] = op.with;
  else if (Array.isArray(parent)) parent.splice(key as number, 1);
  else delete parent[key];
  return copy;
}
const op: fc.Arbitrary<Op> = fc.oneof(
  replacement.map((w) => ({ kind: 'replace' as const, with: w })),
  fc.constant({ kind: 'delete' as const }),
  fc.tuple(fc.constantFrom('extra', 'type', 'data', 'id', 'v'), replacement).map(([key, w]) => ({
    kind: 'add' as const,
    key,
    with: w,
  })),
);

describe('the client checker agrees with the zod schemas', () => {
  it('src/client/wire-schemas.json is generated from the current zod schemas', () => {
    const committed = JSON.parse(readFileSync(join(__dirname, 'wire-schemas.json'), 'utf8'));
    // A mismatch means the schemas changed: run `pnpm --filter @livebus/protocol gen:docs`.
    expect(committed).toEqual(wireSchemas());
  });

  it('on every valid server frame, with the same value', () => {
    fc.assert(
      fc.property(serverFrame, (frame) => {
        const text = JSON.stringify(frame);
        expect(parseServerFrame(text)).toEqual(zodSide.parseServerFrame(text));
      }),
      { numRuns: 1000 },
    );
  });

  it('on server frames with one thing wrong (or right by chance)', () => {
    const seen = { ok: 0, refused: 0 };
    fc.assert(
      fc.property(serverFrame, fc.nat(), op, (frame, pick, change) => {
        const text = JSON.stringify(mutate(frame, pick, change));
        const zod = zodSide.parseServerFrame(text);
        const ours = parseServerFrame(text);
        expect({ text, ok: ours.ok }).toEqual({ text, ok: zod.ok });
        if (zod.ok) expect(ours).toEqual(zod);
        seen[zod.ok ? 'ok' : 'refused']++;
      }),
      { numRuns: 5000 },
    );
    // Both outcomes were exercised, many times.
    expect(Math.min(seen.ok, seen.refused)).toBeGreaterThan(500);
  });

  it('on string lengths, counted in code points as zod counts them (emoji, lone surrogates)', () => {
    const bounded = z.string().min(2).max(3);
    const schema = z.toJSONSchema(bounded) as Parameters<typeof checkJson>[0];
    const samples = [
      'ab',
      'abcd',
      '\u{1F600}',
      '\u{1F600}'.repeat(3),
      '\u{1F600}'.repeat(4),
      'a\u{1F600}',
      '\ud83d',
      '\ud83d\ud83d',
    ];
    for (const v of samples) {
      expect({ v, ok: checkJson(schema, v) === undefined }).toEqual({ v, ok: bounded.safeParse(v).success });
    }
    // The welcome's user_id, at the bound: 128 emoji are 256 UTF-16 units and accepted by zod.
    const welcome = serverFrameExamples.find((f) => f.frame.type === 'welcome')?.frame;
    const text = JSON.stringify({ ...welcome, user_id: '\u{1F600}'.repeat(128) });
    expect(zodSide.parseServerFrame(text).ok).toBe(true);
    expect(parseServerFrame(text)).toEqual(zodSide.parseServerFrame(text));
  });

  it('on client frames, valid and with one thing wrong', () => {
    fc.assert(
      fc.property(clientFrame, fc.nat(), fc.option(op), (frame, pick, change) => {
        const value = change ? mutate(frame, pick, change) : frame;
        const zod = zodSide.parseClientFrame(JSON.stringify(value));
        expect({ value, ok: checkClientFrame(value).ok }).toEqual({ value, ok: zod.ok });
      }),
      { numRuns: 3000 },
    );
  });

  it('on any JSON at all', () => {
    fc.assert(
      fc.property(json, (value) => {
        const text = JSON.stringify(value);
        expect(parseServerFrame(text).ok).toBe(zodSide.parseServerFrame(text).ok);
        expect(checkClientFrame(value).ok).toBe(zodSide.parseClientFrame(text).ok);
      }),
      { numRuns: 1000 },
    );
  });

  it.each(RPC_METHODS)('on results of %s, valid and with one thing wrong', (method) => {
    const example = methodExamples[method].result;
    expect(validateRpcResult(method, example)).toEqual({ ok: true, value: example });
    fc.assert(
      fc.property(fc.nat(), op, (pick, change) => {
        const value = mutate(example, pick, change);
        expect({ value, ok: validateRpcResult(method, value).ok }).toEqual({
          value,
          ok: zodValidateRpcResult(method, value).ok,
        });
      }),
      { numRuns: 300 },
    );
  });

  it('on the documented examples', () => {
    for (const { frame } of serverFrameExamples)
      expect(parseServerFrame(JSON.stringify(frame))).toEqual({ ok: true, value: frame });
    for (const { frame } of clientFrameExamples) expect(JSON.parse(serializeClientFrame(frame))).toEqual(frame);
  });
});

describe('the client checker', () => {
  it('names the path and the problem', () => {
    const event = {
      type: 'event',
      cursor: 'e:1',
      ts: 1,
      event: 'task.progress_update',
      data: { task_id: 't', status: 'running', progress: 101 },
    };
    const parsed = parseServerFrame(JSON.stringify(event));
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) {
      expect(parsed.error).toMatchObject({ name: 'FrameError', kind: 'invalid' });
      expect(parsed.error.issues).toEqual([{ path: 'data.progress', message: 'expected <= 100' }]);
      expect(parsed.error.message).toBe('invalid frame: data.progress: expected <= 100');
    }
    const unknown = parseServerFrame('{"type":"nope"}');
    expect(!unknown.ok && unknown.error.issues[0]?.path).toBe('type');
    const missing = parseServerFrame('{"type":"rpc_result","id":1}');
    expect(!missing.ok && missing.error.issues[0]).toEqual({ path: 'result', message: 'required' });
  });

  it('refuses frames too large or too deep before parsing, like the zod parser', () => {
    const deep = `{"type":"rpc_result","id":1,"result":${'['.repeat(5_000)}${']'.repeat(5_000)}}`;
    const parsed = parseServerFrame(deep);
    expect(!parsed.ok && parsed.error.kind).toBe('too_deep');
    const big = parseServerFrame(`{"type":"rpc_result","id":1,"result":"${'x'.repeat(2_000)}"}`, { maxBytes: 1_000 });
    expect(!big.ok && big.error.kind).toBe('too_large');
    expect(parseServerFrame(new TextEncoder().encode('{"type":"pong"}'))).toEqual({
      ok: true,
      value: { type: 'pong' },
    });
    expect(parseServerFrame(42)).toMatchObject({ ok: false, error: { kind: 'not_text' } });
  });

  it('drops "__proto__" keys, escaped ones included', () => {
    for (const key of ['__proto__', '\\u005f_proto__']) {
      const text = `{"type":"event","cursor":"e1:1","ts":1,"event":"listener.change","data":{"source":"s","path":"p","change":"added","data":{"${key}":{"polluted":true},"ok":1}}}`;
      const parsed = parseServerFrame(text);
      if (!parsed.ok || parsed.value.type !== 'event' || parsed.value.event !== 'listener.change') {
        throw new Error('expected a listener.change event');
      }
      expect(parsed.value.data.data).toEqual({ ok: 1 });
      expect(Object.keys(parsed.value.data.data as object)).toEqual(['ok']);
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('throws a FrameError, never a RangeError, for a frame it cannot send', () => {
    let deep: unknown = 1;
    for (let i = 0; i < 20_000; i++) deep = [deep];
    expect(() => serializeClientFrame({ type: 'rpc', id: 1, method: 'm', args: [deep] } as never)).toThrow(
      expect.objectContaining({ name: 'FrameError' }),
    );
    expect(() => serializeClientFrame({ type: 'auth', token: '' })).toThrow(
      'invalid frame: token: expected at least 1 characters',
    );
    // Not JSON: zod's z.json() refuses these too.
    for (const arg of [undefined, Number.NaN, new Date(0), () => 1]) {
      expect(checkClientFrame({ type: 'rpc', id: 1, method: 'm', args: [arg] }).ok).toBe(false);
    }
  });

  it('refuses schemas it cannot read instead of passing everything', () => {
    expect(() => checkJson({ $ref: '#/nowhere' }, 1)).toThrow('unsupported $ref');
    expect(checkJson(false, 1)).toEqual({ path: '', message: 'not allowed' });
    expect(validateRpcResult('NOPE.nothing' as never, {})).toMatchObject({ ok: false });
  });
});
