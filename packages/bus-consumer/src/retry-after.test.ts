import { retryAfterDelayMs } from './retry-after';

describe('retryAfterDelayMs', () => {
  it('reads delta-seconds and adds up to one second of jitter', () => {
    expect(retryAfterDelayMs('2', () => 0)).toBe(2_000);
    expect(retryAfterDelayMs('2', () => 0.999)).toBe(2_999);
    expect(retryAfterDelayMs(['1', '5'], () => 0.5)).toBe(1_500);
  });

  it('reads an HTTP-date as the time left until then', () => {
    const now = Date.parse('2026-11-23T12:00:00Z');
    expect(retryAfterDelayMs('Mon, 23 Nov 2026 12:00:03 GMT', () => 0, now)).toBe(3_000);
    expect(retryAfterDelayMs('Mon, 23 Nov 2026 11:00:00 GMT', () => 0, now)).toBe(0);
  });

  it('ignores a missing or unreadable header', () => {
    expect(retryAfterDelayMs(undefined)).toBeUndefined();
    expect(retryAfterDelayMs('')).toBeUndefined();
    expect(retryAfterDelayMs('soon')).toBeUndefined();
    expect(retryAfterDelayMs('-1')).toBeUndefined();
  });
});
