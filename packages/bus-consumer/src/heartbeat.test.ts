import { Heartbeat } from './heartbeat';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Real timers with a clock that can jump ahead: a jump before the watchdog runs
 * is what a throttled or suspended page sees (the timer runs long after it was due).
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
      // A live peer answers shortly after (any frame counts).
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
  afterEach(() => hb?.stop());

  it('declares a silent peer dead after the timeout when its watchdog runs on time', async () => {
    const r = rig(timing);
    hb = r.hb;
    r.hb.start();
    await sleep(600);
    expect(r.log.filter((e) => e === 'dead')).toHaveLength(1);
    expect(r.deadAt).toBeGreaterThanOrEqual(290);
    // On time: no grace, dead well before timeout + grace.
    expect(r.deadAt).toBeLessThan(300 + 100);
  });

  it('keeps a peer alive while it sends frames', async () => {
    const r = rig(timing);
    hb = r.hb;
    r.answer(true);
    r.hb.start();
    await sleep(800);
    expect(r.log).not.toContain('dead');
    expect(r.log.filter((e) => e === 'ping').length).toBeGreaterThanOrEqual(5);
  });

  it('after a late wakeup, pings and keeps a peer that answers within the grace', async () => {
    const r = rig(timing);
    hb = r.hb;
    r.hb.start();
    await sleep(250);
    r.jump(5_000); // the page slept: every timer is now far behind the clock
    r.answer(true);
    await sleep(400); // the watchdog ran at ~300, found 5 s of silence, pinged, and heard back
    expect(r.log).not.toContain('dead');
    r.answer(false);
    // No answers any more: the next watchdog runs on time and gives up without grace.
    await sleep(600);
    expect(r.log.filter((e) => e === 'dead')).toHaveLength(1);
  });

  it('after a late wakeup, declares the peer dead when the grace passes in silence', async () => {
    const r = rig(timing);
    hb = r.hb;
    r.hb.start();
    await sleep(250);
    r.jump(5_000);
    await sleep(600);
    expect(r.log.filter((e) => e === 'dead')).toHaveLength(1);
    // Watchdog due at 300 (late by the jump), then one grace of 150.
    expect(r.deadAt).toBeGreaterThanOrEqual(300 + 150 - 10);
    expect(r.deadAt).toBeLessThan(300 + 150 + 100);
    // The last thing before giving up was the grace ping.
    expect(r.log.slice(-2)).toEqual(['ping', 'dead']);
  });

  it('never calls dead after stop()', async () => {
    const r = rig(timing);
    r.hb.start();
    r.hb.stop();
    await sleep(450);
    expect(r.log).toEqual([]);
  });

  it('with a grace of 0 declares the peer dead at a late wakeup', async () => {
    const r = rig({ ...timing, lateWakeupGraceMs: 0 });
    hb = r.hb;
    r.hb.start();
    await sleep(250);
    r.jump(5_000);
    await sleep(150);
    expect(r.log.at(-1)).toBe('dead');
    expect(r.deadAt).toBeLessThan(300 + 100);
  });
});
