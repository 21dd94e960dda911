import fc from 'fast-check';
import { parseClientFrame, parseJsonText, parseServerFrame, serializeFrame } from './codec';
import { compareCursors, formatCursor, parseCursor } from './cursor';
import { protocolDefaults } from './defaults';
import { exceedsJsonDepth, exceedsValueDepth } from './json-depth';

const nested = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`;

describe('hostile input never throws', () => {
  it('refuses deep nesting before any recursive code runs, in both directions', () => {
    for (const depth of [65, 2_000, 5_000, 100_000]) {
      const rpc = `{"type":"rpc","id":1,"method":"REGISTRY.get_sessions","args":${nested(depth)}}`;
      for (const parse of [parseClientFrame, parseServerFrame]) {
        const result = parse(rpc);
        expect(result.ok).toBe(false);
        if (!result.ok) expect(result.error.kind).toBe('too_deep');
      }
    }
    const event = `{"type":"event","cursor":"e:1","ts":1,"event":"listener.change","data":{"source":"s","path":"p","change":"added","data":${nested(10_000)}}}`;
    const result = parseServerFrame(event);
    expect(result.ok || result.error.kind).toBe('too_deep');
  });

  it('accepts nesting up to the limit', () => {
    const args = nested(protocolDefaults.maxJsonDepth - 1);
    const result = parseClientFrame(`{"type":"rpc","id":1,"method":"m","args":${args}}`);
    expect(result.ok).toBe(true);
  });

  it('does not count brackets inside strings, escaped quotes included', () => {
    expect(exceedsJsonDepth(JSON.stringify({ a: '[[[[[[[[[[', b: '\\"[[[[[[' }), 3)).toBe(false);
    expect(exceedsJsonDepth('[[["\\"",[1]]]]', 3)).toBe(true);
    expect(exceedsJsonDepth('[[["\\"",[1]]]]', 4)).toBe(false);
  });

  it('measures a text as deep as the value it parses to, whatever the limit', () => {
    // Texts with few brackets skip the scan (they cannot be deeper than their bracket count):
    // the verdict must not depend on which path answered. Strings full of brackets included.
    const bracketString = fc.stringMatching(/^[[\]{}"\\a]{0,12}$/);
    const value = fc.letrec((tie) => ({
      node: fc.oneof(
        { depthSize: 'small' },
        bracketString,
        fc.integer(),
        fc.array(tie('node'), { maxLength: 3 }),
        fc.dictionary(bracketString, tie('node'), { maxKeys: 3 }),
      ),
    })).node;
    fc.assert(
      fc.property(value, fc.integer({ min: 0, max: 12 }), (v, limit) => {
        expect(exceedsJsonDepth(JSON.stringify(v), limit)).toBe(exceedsValueDepth(v, limit));
      }),
      { numRuns: 2000 },
    );
  });

  it('measures parsed values without overflowing the call stack, cycles included', () => {
    let deep: unknown = 1;
    for (let i = 0; i < 100_000; i++) deep = [deep];
    expect(exceedsValueDepth(deep, 64)).toBe(true);
    expect(exceedsValueDepth({ a: [{ b: 1 }] }, 3)).toBe(false);
    expect(exceedsValueDepth({ a: [{ b: 1 }] }, 2)).toBe(true);
    const cycle: Record<string, unknown> = {};
    cycle.self = cycle;
    expect(exceedsValueDepth(cycle, 64)).toBe(true);
  });

  it('serializeFrame turns a frame too deep to validate into a FrameError, not a RangeError', () => {
    let deep: unknown = 1;
    for (let i = 0; i < 20_000; i++) deep = [deep];
    expect(() => serializeFrame({ type: 'rpc', id: 1, method: 'm', args: [deep] } as never)).toThrow(
      expect.objectContaining({ name: 'FrameError' }),
    );
  });

  it('gives a typed result for any string up to the frame limit', () => {
    const bracketsAndText = fc.array(
      fc.oneof(
        fc.constantFrom('[', ']', '{', '}', '"', '\\', ',', ':', '1', 'null', '"type":"rpc"', '"args":'),
        fc.string({ maxLength: 8 }),
      ),
      { maxLength: 400 },
    );
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 2_000 }),
          bracketsAndText.map((p) => p.join('')),
        ),
        (text) => {
          for (const parse of [parseClientFrame, parseServerFrame]) {
            const result = parse(text);
            expect(typeof result.ok).toBe('boolean');
          }
          expect(typeof parseJsonText(text).ok).toBe('boolean');
        },
      ),
      { numRuns: 1_000 },
    );
    // The largest frame allowed, all brackets: refused by depth, quickly.
    const max = '['.repeat(protocolDefaults.maxFrameBytes);
    expect(parseClientFrame(max).ok).toBe(false);
  });
});

describe('cursors', () => {
  it('round-trip and order within an epoch only', () => {
    const c = formatCursor('k3x9', 41);
    expect(parseCursor(c)).toEqual({ epoch: 'k3x9', offset: 41 });
    expect(compareCursors('e:2', 'e:10')).toBeLessThan(0);
    expect(compareCursors('e:10', 'e:10')).toBe(0);
    expect(compareCursors('e:2', 'f:1')).toBeUndefined();
    expect(parseCursor('nope')).toBeUndefined();
    expect(parseCursor(':1')).toBeUndefined();
    expect(parseCursor('e:-1')).toBeUndefined();
  });
});
