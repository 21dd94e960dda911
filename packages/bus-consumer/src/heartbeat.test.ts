import { Heartbeat } from './heartbeat';

/**
 * Fake timers (which move Date.now() too) with a clock that can also jump ahead
 * without running any timer: a jump before the watchdog runs is what a throttled or
 * suspended page sees (the timer runs long after it was due). Every time below is
 * exact: `at` is fake time since start().
 */
function rig(options: { pingIntervalMs: number; pingTimeoutMs: number; lateWakeupGraceMs: number }) {
  let skew = 0;
  const started = Date.now();
  const log: string[] = [];
  let deadAt: number | undefined;
  let answer = false;
  const hb: Heartbeat = new Heartbeat({
    ...options,
    now: () => Date.now() + skew,
    ping: () => {
      log.push('ping');
      // A live peer answers 10 ms later (any frame counts).
      if (answer) setTimeout(() => hb.alive(), 10);
    },
    dead: () => {
      log.push('dead');
      deadAt = Date.now() - started;
    },
  });
  return {
    hb,
    log,
    /** Runs the timers due in the next `ms`. */
    advance: (ms: number) => jest.advanceTimersByTime(ms),
    jump: (ms: number) => {
      skew += ms;
    },
    answer: (on: boolean) => {
      answer = on;
    },
    get deadAt() {
      return deadAt;
    },
  };
}

describe('Heartbeat', () => {
  const timing = { pingIntervalMs: 100, pingTimeoutMs: 300, lateWakeupGraceMs: 150 };
  let hb: Heartbeat | undefined;
  beforeEach(() => jest.useFakeTimers({ now: 10_000 }));
  afterEach(() => {
    hb?.stop();
    jest.useRealTimers();
  });

  it('declares a silent peer dead after the timeout when its watchdog runs on time', () => {
    const r = rig(timing);
    hb = r.hb;
    r.hb.start();
    r.advance(299);
    expect(r.log).not.toContain('dead');
    r.advance(1); // on time: no grace
    expect(r.deadAt).toBe(300);
    r.advance(1_000);
    expect(r.log.filter((e) => e === 'dead')).toHaveLength(1);
  });

  it('keeps a peer alive while it sends frames', () => {
    const r = rig(timing);
    hb = r.hb;
    r.answer(true);
    r.hb.start();
    r.advance(800);
    expect(r.log).toEqual(Array(8).fill('ping')); // one every pingIntervalMs
  });

  it('after a late wakeup, pings and keeps a peer that answers within the grace', () => {
    const r = rig(timing);
    hb = r.hb;
    r.hb.start();
    r.advance(250);
    r.jump(5_000); // the page slept: every timer is now far behind the clock
    r.answer(true);
    // The watchdog runs at 300, finds 5 s of silence, pings, and hears back at 310.
    r.advance(400);
    expect(r.log).not.toContain('dead');
    r.answer(false);
    // Last answer at 610 (to the ping of 600); the pings from 700 on go unanswered: the
    // watchdog, on time now, gives up without grace exactly pingTimeoutMs after it.
    r.advance(909 - 650);
    expect(r.log).not.toContain('dead');
    r.advance(1);
    expect(r.deadAt).toBe(910);
    expect(r.log.at(-1)).toBe('dead');
  });

  it('after a late wakeup, declares the peer dead when the grace passes in silence', () => {
    const r = rig(timing);
    hb = r.hb;
    r.hb.start();
    r.advance(250);
    r.jump(5_000);
    // Watchdog due at 300 (late by the jump), then one grace of 150.
    r.advance(449 - 250);
    expect(r.log).not.toContain('dead');
    r.advance(1);
    expect(r.deadAt).toBe(300 + 150);
    // The last thing before giving up was the grace ping.
    expect(r.log.slice(-2)).toEqual(['ping', 'dead']);
  });

  it('never calls dead after stop()', () => {
    const r = rig(timing);
    r.hb.start();
    r.hb.stop();
    r.advance(450);
    expect(r.log).toEqual([]);
    expect(jest.getTimerCount()).toBe(0);
  });

  it('with a grace of 0 declares the peer dead at a late wakeup', () => {
    const r = rig({ ...timing, lateWakeupGraceMs: 0 });
    hb = r.hb;
    r.hb.start();
    r.advance(250);
    r.jump(5_000);
    r.advance(49);
    expect(r.log).not.toContain('dead');
    r.advance(1);
    expect(r.deadAt).toBe(300);
    expect(r.log.at(-1)).toBe('dead');
  });
});
