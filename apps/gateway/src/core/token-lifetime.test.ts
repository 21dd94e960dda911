import type { Session } from './session';
import { TokenLifetime } from './token-lifetime';

// A multiple of the wheel's 250 ms slots: deadlines fire exactly on time under fake timers.
const T0 = 1_800_000_000_000;
const sessionWith = (expiresAtMs: number | undefined) =>
  ({ principal: { uid: 'u', service: false, expiresAtMs } }) as unknown as Session;

describe('TokenLifetime', () => {
  let asks: Array<[number, number]>;
  let closes: number[];
  let lifetime: TokenLifetime;
  beforeEach(() => {
    jest.useFakeTimers({ now: T0 });
    asks = [];
    closes = [];
    lifetime = new TokenLifetime({
      refreshLeadMs: 60_000,
      clockToleranceMs: 5_000,
      graceMs: 30_000,
      onExpiring: (_, expiresAtMs) => asks.push([Date.now() - T0, expiresAtMs - T0]),
      onExpired: () => closes.push(Date.now() - T0),
    });
  });
  afterEach(() => jest.useRealTimers());

  it('asks for a fresh 3 s token once, at half its life, never at once (the default lead is 60 s)', () => {
    const session = sessionWith(T0 + 3_000);
    lifetime.track(session);
    expect(asks).toEqual([]);
    jest.advanceTimersByTime(1_499);
    expect(asks).toEqual([]);
    jest.advanceTimersByTime(1);
    expect(asks).toEqual([[1_500, 3_000]]);
    // The ask is not repeated for the same token: next comes the close, at exp + tolerance + grace.
    jest.advanceTimersByTime(36_499);
    expect(asks).toHaveLength(1);
    expect(closes).toEqual([]);
    jest.advanceTimersByTime(1);
    expect(closes).toEqual([38_000]);
    expect(lifetime.size).toBe(0);
  });

  it('a client answering every ask with a fresh 3 s token is asked every 1.5 s: 2 tokens per lifetime', () => {
    const session = sessionWith(T0 + 3_000);
    lifetime.track(session);
    for (let i = 0; i < 8; i++) {
      jest.advanceTimersByTime(1_500);
      session.principal = { uid: 'u', service: false, expiresAtMs: Date.now() + 3_000 };
      lifetime.track(session);
    }
    expect(asks.map(([at]) => at)).toEqual([1_500, 3_000, 4_500, 6_000, 7_500, 9_000, 10_500, 12_000]);
    expect(closes).toEqual([]);
  });

  it('asks at once for a token accepted past its exp (within the tolerance), and closes after the grace', () => {
    lifetime.track(sessionWith(T0 - 2_000));
    expect(asks).toEqual([[0, -2_000]]);
    jest.advanceTimersByTime(32_999);
    expect(closes).toEqual([]);
    jest.advanceTimersByTime(1);
    expect(closes).toEqual([33_000]);
  });

  it('a fresh token moves both deadlines; untrack and tokens without exp hold none', () => {
    const session = sessionWith(T0 + 600_000);
    lifetime.track(session);
    session.principal = { uid: 'u', service: false, expiresAtMs: T0 + 1_200_000 };
    lifetime.track(session);
    jest.advanceTimersByTime(600_000);
    expect(asks).toEqual([]);
    jest.advanceTimersByTime(540_000);
    expect(asks).toEqual([[1_140_000, 1_200_000]]);
    lifetime.untrack(session);
    lifetime.track(sessionWith(undefined));
    expect(lifetime.size).toBe(0);
  });
});
