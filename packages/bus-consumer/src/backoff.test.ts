import fc from 'fast-check';
import { fullJitterBackoff, growsBackoff } from './backoff';

describe('fullJitterBackoff', () => {
  it('stays within [0, min(max, min * 2^attempt)] for any random value', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 10_000 }),
        fc.integer({ min: 0, max: 100_000 }),
        fc.integer({ min: 0, max: 64 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (min, extra, attempt, r) => {
          const max = min + extra;
          const delay = fullJitterBackoff(min, max, () => r)(attempt);
          expect(delay).toBeGreaterThanOrEqual(0);
          expect(delay).toBeLessThanOrEqual(Math.min(max, min * 2 ** attempt));
          expect(Number.isInteger(delay)).toBe(true);
        },
      ),
    );
  });

  it('spreads delays over the whole window after the cap (no lockstep)', () => {
    const backoff = fullJitterBackoff(500, 30_000);
    const delays = Array.from({ length: 2_000 }, () => backoff(40));
    const buckets = new Array(10).fill(0);
    for (const d of delays) buckets[Math.min(9, Math.floor(d / 3_000))]++;
    // Uniform over [0, 30 000): every tenth of the window gets roughly 200 of 2 000.
    for (const count of buckets) {
      expect(count).toBeGreaterThan(120);
      expect(count).toBeLessThan(280);
    }
    expect(new Set(delays).size).toBeGreaterThan(1_500);
  });

  it('refuses contradictory bounds', () => {
    expect(() => fullJitterBackoff(1_000, 10)).toThrow(TypeError);
    expect(() => fullJitterBackoff(-1, 10)).toThrow(TypeError);
  });
});

describe('growsBackoff', () => {
  it('keeps the ceiling for attempts that never reached a gateway, only within the window', () => {
    expect(growsBackoff({ reachedGateway: false, sinceLossMs: 0 }, 3_000)).toBe(false);
    expect(growsBackoff({ reachedGateway: false, sinceLossMs: 2_999 }, 3_000)).toBe(false);
    expect(growsBackoff({ reachedGateway: false, sinceLossMs: 3_000 }, 3_000)).toBe(true);
    expect(growsBackoff({ reachedGateway: false, sinceLossMs: 0 }, 0)).toBe(true);
  });

  it('grows it for every attempt that reached a gateway', () => {
    fc.assert(
      fc.property(fc.nat(), fc.nat(), (sinceLossMs, windowMs) => {
        expect(growsBackoff({ reachedGateway: true, sinceLossMs }, windowMs)).toBe(true);
      }),
    );
  });
});
