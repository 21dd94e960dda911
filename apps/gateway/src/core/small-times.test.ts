import { CLOCK_ORIGIN, fromSmallTime, toSmallTime } from './small-times';

describe('small times', () => {
  it('give back the whole ms they were made from, near the start and far from it', () => {
    for (const ms of [CLOCK_ORIGIN, CLOCK_ORIGIN + 1234, CLOCK_ORIGIN - 5, CLOCK_ORIGIN + 2 ** 31, 1000, 0]) {
      expect(fromSmallTime(toSmallTime(ms))).toBe(ms);
    }
  });

  it('are integers of at most 30 bits within 12 days of the start, and the plain difference beyond', () => {
    expect(toSmallTime(CLOCK_ORIGIN + 86_400_000)).toBe(86_400_000);
    expect(toSmallTime(CLOCK_ORIGIN + 2 ** 31)).toBe(2 ** 31);
    expect(toSmallTime(CLOCK_ORIGIN - 2 ** 31)).toBe(-(2 ** 31));
  });
});
