import { welcomeFrame } from '../test/welcome-frame';
import { BusConsumer } from './consumer';
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
      // A live peer answers 10 ms later (a pong).
      if (answer) setTimeout(() => hb.answered(), 10);
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

  it('keeps a peer alive that answers its pings, pinging it every interval', () => {
    const r = rig(timing);
    hb = r.hb;
    r.answer(true);
    r.hb.start();
    r.advance(800);
    expect(r.log).toEqual(Array(8).fill('ping')); // one every pingIntervalMs: pongs do not spare one
  });

  it('does not ping a peer that pinged (or sent anything) within the interval, and pings it once it goes quiet', () => {
    const r = rig(timing);
    hb = r.hb;
    r.answer(true);
    r.hb.start();
    // The peer pings every 100 ms at 60, 160, ...: every tick (100, 200, ...) finds it heard 40 ms ago.
    r.advance(60);
    r.hb.alive();
    const peer = setInterval(() => r.hb.alive(), 100);
    r.advance(740);
    expect(r.log).toEqual([]);
    clearInterval(peer);
    // Last heard at 760. Tick 800: 40 ms ago, nothing; tick 900: 140 ms ago, a ping (answered at 910).
    r.advance(99);
    expect(r.log).toEqual([]);
    r.advance(1);
    expect(r.log).toEqual(['ping']);
    // Only pongs since: a ping every tick, and the peer stays alive.
    r.advance(1_000);
    expect(r.log).toEqual(Array(11).fill('ping'));
  });

  it('with a timeout under two intervals, pings at every tick even a peer it just heard from', () => {
    // Skipping one tick could leave almost two intervals of silence: more than the timeout allows.
    const r = rig({ ...timing, pingTimeoutMs: 150 });
    hb = r.hb;
    r.answer(true);
    r.hb.start();
    r.advance(50);
    const peer = setInterval(() => r.hb.alive(), 100); // heard at 50, 150, ...: 50 ms before each tick
    r.hb.alive();
    r.advance(450);
    clearInterval(peer);
    expect(r.log).toEqual(Array(5).fill('ping'));
  });

  it('an answer known only once parsed (an app-level pong) spares no ping', () => {
    const r = rig(timing);
    hb = r.hb;
    r.hb.start();
    r.advance(100);
    expect(r.log).toEqual(['ping']);
    // The pong frame arrives: alive on arrival, then known to be the answer.
    r.hb.alive();
    r.hb.wasAnswer();
    r.advance(100);
    expect(r.log).toEqual(['ping', 'ping']);
    expect(r.log).not.toContain('dead');
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

/**
 * A socket as `ws` in Node (protocol pings), whose gateway welcomes the hello and whose pings and
 * pongs the test makes: `gatewayPing()` is the gateway's ping, and the client's pings are counted.
 */
class PingingSocket {
  static last: PingingSocket | undefined;
  readyState = 0;
  onopen: ((event: unknown) => void) | null = null;
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onclose: ((event: { code: number; reason: string }) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;
  /** The client's protocol pings; each is answered with a pong when `answers` is on. */
  pings = 0;
  answers = true;
  readonly #listeners = new Map<string, Array<() => void>>();

  constructor(_url: string) {
    PingingSocket.last = this;
    setTimeout(() => {
      this.readyState = 1;
      this.onopen?.({});
    }, 1);
  }

  on(event: string, listener: () => void): this {
    this.#listeners.set(event, [...(this.#listeners.get(event) ?? []), listener]);
    return this;
  }

  gatewayPing(): void {
    this.#emit('ping');
  }

  #emit(event: string): void {
    for (const listener of this.#listeners.get(event) ?? []) listener();
  }

  ping(): void {
    this.pings++;
    if (this.answers) setTimeout(() => this.#emit('pong'), 1);
  }

  send(data: string): void {
    const frame = JSON.parse(data) as { type: string; session_id?: string };
    if (frame.type !== 'hello') return;
    const welcome = welcomeFrame(frame, { heartbeat: { ping_interval_ms: 100, ping_timeout_ms: 300 } });
    setTimeout(() => this.onmessage?.({ data: JSON.stringify(welcome) }), 1);
  }

  close(): void {
    this.terminate();
  }

  terminate(): void {
    if (this.readyState === 3) return;
    this.readyState = 3;
    // As `ws`: the close event comes later.
    setTimeout(() => this.onclose?.({ code: 1006, reason: '' }), 0);
  }
}

describe('the client heartbeat against a gateway', () => {
  beforeEach(() => jest.useFakeTimers({ now: 10_000 }));
  afterEach(() => jest.useRealTimers());

  it("sends no ping while the gateway's own pings keep coming, and pings a gateway that only answers", async () => {
    const client = new BusConsumer({
      url: 'ws://gateway.test/ws',
      userId: 'u',
      WebSocket: PingingSocket,
      pingIntervalMs: 100,
      pingTimeoutMs: 300,
    });
    const opened = client.connect();
    await jest.advanceTimersByTimeAsync(5);
    await opened;
    const socket = PingingSocket.last as PingingSocket;
    // The gateway pings every 100 ms, 50 ms after each of the client's ticks.
    await jest.advanceTimersByTimeAsync(45);
    socket.gatewayPing();
    const gateway = setInterval(() => socket.gatewayPing(), 100);
    await jest.advanceTimersByTimeAsync(1_000);
    expect(socket.pings).toBe(0);
    clearInterval(gateway);
    // Quiet gateway: the client pings at every tick, and the pongs keep the session open.
    await jest.advanceTimersByTimeAsync(1_000);
    expect(socket.pings).toBeGreaterThanOrEqual(9);
    expect(client.state).toBe('open');
    // Nothing answers any more: dead after the timeout.
    socket.answers = false;
    await jest.advanceTimersByTimeAsync(400);
    expect(client.counters.lastCloseReason).toBe('ping_timeout');
    client.close();
  });
});
