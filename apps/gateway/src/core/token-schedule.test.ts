import { tokenDeadlines } from './token-schedule';

const T0 = 1_800_000_000_000;
const defaults = { refreshLeadMs: 60_000, clockToleranceMs: 5_000, graceMs: 30_000 };

describe('tokenDeadlines', () => {
  it('asks the lead before expiry when the token outlives twice the lead', () => {
    expect(tokenDeadlines(T0 + 3_600_000, T0, defaults)).toEqual({
      askAtMs: T0 + 3_540_000,
      closeAtMs: T0 + 3_635_000,
    });
    expect(tokenDeadlines(T0 + 120_000, T0, defaults).askAtMs).toBe(T0 + 60_000);
  });

  it('asks at half the remaining life when that is shorter than the lead', () => {
    expect(tokenDeadlines(T0 + 3_000, T0, defaults)).toEqual({ askAtMs: T0 + 1_500, closeAtMs: T0 + 38_000 });
    expect(tokenDeadlines(T0 + 119_999, T0, defaults).askAtMs).toBe(T0 + 60_000);
    // Whole milliseconds: the ask never comes before half the life.
    expect(tokenDeadlines(T0 + 3, T0, defaults).askAtMs).toBe(T0 + 2);
  });

  it('measures the remaining life from when the token was received, not from its start', () => {
    // The same token, received 1 s later, leaves 2 s: asked 1 s before expiry.
    expect(tokenDeadlines(T0 + 3_000, T0 + 1_000, defaults).askAtMs).toBe(T0 + 2_000);
  });

  it('asks at expiry for a token received after it (accepted within the clock tolerance)', () => {
    expect(tokenDeadlines(T0, T0 + 2_000, defaults)).toEqual({ askAtMs: T0, closeAtMs: T0 + 35_000 });
  });

  it('closes after exp plus the tolerance plus the grace, whatever the lead', () => {
    const o = { refreshLeadMs: 0, clockToleranceMs: 0, graceMs: 300 };
    expect(tokenDeadlines(T0 + 10_000, T0, o)).toEqual({ askAtMs: T0 + 10_000, closeAtMs: T0 + 10_300 });
  });

  it('asks exactly once per token: a fresh 3 s token every ask leaves 1.5 s between asks', () => {
    let now = T0;
    const asks: number[] = [];
    for (let i = 0; i < 8; i++) {
      const { askAtMs } = tokenDeadlines(now + 3_000, now, defaults);
      asks.push(askAtMs - now);
      now = askAtMs; // the client answers the ask at once with a fresh token
    }
    expect(asks).toEqual(Array(8).fill(1_500));
  });
});
