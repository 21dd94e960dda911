import { judgeUpgradeRefusal } from './upgrade-refusal';

describe('judgeUpgradeRefusal', () => {
  it('retries passing trouble (5xx, 429, 408), after the Retry-After when there is one', () => {
    expect(judgeUpgradeRefusal({ statusCode: 503, headers: { 'retry-after': '2' } })).toMatchObject({
      fatal: false,
      status: 503,
      retryAfterMs: expect.any(Number),
    });
    expect(judgeUpgradeRefusal({ statusCode: 502, headers: {} })).toEqual({
      fatal: false,
      status: 502,
      retryAfterMs: undefined,
    });
    expect(judgeUpgradeRefusal({ statusCode: 429, headers: {} }).fatal).toBe(false);
    expect(judgeUpgradeRefusal({ statusCode: 408, headers: {} }).fatal).toBe(false);
  });

  it('stops on answers that would be the same every time: 4xx, 3xx (with where to), 2xx', () => {
    expect(judgeUpgradeRefusal({ statusCode: 404, headers: {} })).toEqual({
      fatal: true,
      status: 404,
      location: undefined,
    });
    expect(judgeUpgradeRefusal({ statusCode: 403, headers: {} }).fatal).toBe(true);
    expect(judgeUpgradeRefusal({ statusCode: 401, headers: {} }).fatal).toBe(true);
    expect(judgeUpgradeRefusal({ statusCode: 301, headers: { location: 'wss://rt.example.com/ws' } })).toEqual({
      fatal: true,
      status: 301,
      location: 'wss://rt.example.com/ws',
    });
    expect(judgeUpgradeRefusal({ statusCode: 200, headers: {} }).fatal).toBe(true);
  });
});
