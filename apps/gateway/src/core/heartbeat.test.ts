import { createHeartbeat, HEARTBEAT_SLICE } from './heartbeat';
import type { Connection } from './session';

/** What the sweep touches of a connection: its phase, last sign of life, socket pings and terminate. */
interface FakeConnection {
  phase: Connection['phase'];
  early: Buffer[] | undefined;
  lastSeen: number;
  appPing: boolean;
  pings: number[];
  frames: unknown[];
  terminated: string | undefined;
  socket: { isOpen: boolean; ping(): void };
  send(frame: unknown): boolean;
  terminate(reason?: string): void;
}

const fakeConnection = (): FakeConnection => {
  const c: FakeConnection = {
    phase: 'open',
    early: undefined,
    lastSeen: Date.now(),
    appPing: false,
    pings: [],
    frames: [],
    terminated: undefined,
    socket: { isOpen: true, ping: () => c.pings.push(Date.now()) },
    send: (frame) => c.frames.push(frame) > 0,
    terminate: (reason) => {
      c.terminated = reason;
      c.phase = 'closed';
    },
  };
  return c;
};

/** A heartbeat over 2.5 slices' worth of fake connections (1 s interval), and how many were pinged. */
const threeSlices = () => {
  const conns = Array.from({ length: 2 * HEARTBEAT_SLICE + 50 }, fakeConnection);
  const heartbeat = createHeartbeat(new Set(conns as unknown as Connection[]), {
    pingIntervalMs: 1_000,
    pingTimeoutMs: 5_000,
  });
  const pinged = () => conns.filter((c) => c.pings.length > 0).length;
  return { conns, heartbeat, pinged };
};

describe('createHeartbeat, on fake timers', () => {
  const T0 = 1_000_000;
  beforeEach(() => jest.useFakeTimers({ now: T0 }));
  afterEach(() => jest.useRealTimers());

  it('drops a token bucket that has refilled (the next frame makes a new one), keeps one still refilling', () => {
    const [idle, busy] = [fakeConnection(), fakeConnection()];
    const bucket = (full: boolean) => ({ isFull: () => full });
    const withLimiter = (c: FakeConnection, full: boolean) => Object.assign(c, { limiter: bucket(full) });
    const heartbeat = createHeartbeat(
      new Set([withLimiter(idle, true), withLimiter(busy, false)] as unknown as Connection[]),
      { pingIntervalMs: 1_000, pingTimeoutMs: 5_000 },
    );
    heartbeat.sweep();
    expect([(idle as { limiter?: unknown }).limiter, (busy as { limiter?: unknown }).limiter]).toEqual([
      undefined,
      expect.objectContaining({ isFull: expect.any(Function) }),
    ]);
  });

  it('spreads a sweep over 80 % of the interval in slices, each socket pinged once', () => {
    const { conns, heartbeat, pinged } = threeSlices();
    heartbeat.sweep();
    expect(pinged()).toBe(HEARTBEAT_SLICE); // the first slice at once
    jest.advanceTimersByTime(399); // 3 slices: one every floor(800 / 2) ms
    expect(pinged()).toBe(HEARTBEAT_SLICE);
    jest.advanceTimersByTime(1);
    expect(pinged()).toBe(2 * HEARTBEAT_SLICE);
    jest.advanceTimersByTime(400);
    expect(pinged()).toBe(2 * HEARTBEAT_SLICE + 50);
    expect(conns.map((c) => c.pings)).toEqual(
      conns.map((_, i) => [T0 + 400 * Math.floor(i / HEARTBEAT_SLICE)]), // once each, at its slice's time
    );
    expect(jest.getTimerCount()).toBe(0);
  });

  it('terminates a socket silent for longer than the ping timeout, sends app pings to open browser sessions', () => {
    const [silent, browser, quiet, closed] = [fakeConnection(), fakeConnection(), fakeConnection(), fakeConnection()];
    browser!.appPing = true;
    closed!.phase = 'closed';
    const heartbeat = createHeartbeat(new Set([silent, browser, quiet, closed] as unknown as Connection[]), {
      pingIntervalMs: 1_000,
      pingTimeoutMs: 5_000,
    });
    jest.advanceTimersByTime(5_000);
    browser!.lastSeen = quiet!.lastSeen = Date.now();
    heartbeat.sweep(); // silent for exactly the timeout: still pinged
    expect([silent!.terminated, silent!.pings.length]).toEqual([undefined, 1]);
    jest.advanceTimersByTime(1);
    heartbeat.sweep(); // 1 ms longer: terminated
    expect(silent!.terminated).toBe('ping_timeout');
    expect(browser!.frames).toEqual([
      { type: 'ping', ts: T0 + 5_000 },
      { type: 'ping', ts: T0 + 5_001 },
    ]);
    expect([quiet!.frames, quiet!.pings.length]).toEqual([[], 2]);
    expect([closed!.pings, closed!.terminated]).toEqual([[], undefined]);
  });

  it('sends no app ping to a session whose welcome is not out yet (its frames still held)', () => {
    const waiting = fakeConnection();
    waiting.appPing = true;
    waiting.early = [];
    const heartbeat = createHeartbeat(new Set([waiting] as unknown as Connection[]), {
      pingIntervalMs: 1_000,
      pingTimeoutMs: 5_000,
    });
    heartbeat.sweep();
    expect([waiting.frames, waiting.pings.length]).toEqual([[], 1]);
    waiting.early = undefined; // the welcome is out
    jest.advanceTimersByTime(1_000);
    heartbeat.sweep();
    expect(waiting.frames).toEqual([{ type: 'ping', ts: T0 + 1_000 }]);
  });

  it('judges nobody silent in the first run after the event loop was held up, only pings; the next run does', () => {
    const [answers, silent] = [fakeConnection(), fakeConnection()];
    const heartbeat = createHeartbeat(new Set([answers, silent] as unknown as Connection[]), {
      pingIntervalMs: 1_000,
      pingTimeoutMs: 5_000,
    });
    heartbeat.sweep();
    // The process stops for 8 s (its interval ticks once, late): the pong of the first socket is
    // still unread in its socket when the sweep runs.
    jest.setSystemTime(Date.now() + 8_000);
    heartbeat.sweep();
    expect([answers.terminated, silent.terminated]).toEqual([undefined, undefined]);
    expect([answers.pings.length, silent.pings.length]).toEqual([2, 2]);
    // Read after the timers: the answer counts, and the next run (on time) judges.
    answers.lastSeen = Date.now();
    jest.advanceTimersByTime(1_000);
    heartbeat.sweep();
    expect([answers.terminated, silent.terminated]).toEqual([undefined, 'ping_timeout']);
  });

  it('skips judging one run at most: on a loop that is late every time, silent sockets are still ended', () => {
    const silent = fakeConnection();
    const heartbeat = createHeartbeat(new Set([silent] as unknown as Connection[]), {
      pingIntervalMs: 1_000,
      pingTimeoutMs: 5_000,
    });
    heartbeat.sweep();
    jest.setSystemTime(Date.now() + 6_000);
    heartbeat.sweep(); // late: pings only
    expect(silent.terminated).toBeUndefined();
    jest.setSystemTime(Date.now() + 3_000);
    heartbeat.sweep(); // late again, but the last run judged nobody: this one judges
    expect(silent.terminated).toBe('ping_timeout');
  });

  it('lets a sweep that runs late finish, skipping the next one, so every socket is still pinged', () => {
    const { conns, heartbeat, pinged } = threeSlices();
    // The interval's ticks come before the sweep's later slices every time (timers running late).
    for (let tick = 0; tick < 3; tick++) {
      heartbeat.sweep();
      jest.advanceTimersByTime(399);
    }
    expect(pinged()).toBe(2 * HEARTBEAT_SLICE + 50);
    expect(conns.every((c) => c.pings.length === 1)).toBe(true);
    // Done: the next tick starts a new sweep.
    heartbeat.sweep();
    expect(conns.filter((c) => c.pings.length === 2)).toHaveLength(HEARTBEAT_SLICE);
  });

  it('stop() drops the rest of a sweep in progress', () => {
    const conns = Array.from({ length: HEARTBEAT_SLICE + 1 }, fakeConnection);
    const heartbeat = createHeartbeat(new Set(conns as unknown as Connection[]), {
      pingIntervalMs: 1_000,
      pingTimeoutMs: 5_000,
    });
    heartbeat.sweep();
    heartbeat.stop();
    jest.advanceTimersByTime(10_000);
    expect(conns.filter((c) => c.pings.length > 0)).toHaveLength(HEARTBEAT_SLICE);
  });
});
