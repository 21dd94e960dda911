import { PassThrough } from 'node:stream';
import { waitFor } from '@livebus/test-support';
import {
  Admission,
  type AdmissionDecision,
  type HandshakeTicket,
  LAG_FLOOR,
  LAG_SAMPLE_MS,
  refuseUpgrade,
} from './admission';

const ticketOf = (d: AdmissionDecision): HandshakeTicket => {
  if (!d.admit) throw new Error(`refused: ${d.reason}`);
  return d.ticket;
};

describe('Admission', () => {
  it('admits while the loop is on time and few handshakes are in flight, counting each until done', () => {
    const a = new Admission({ maxHandshakes: 2, maxLagMs: 40, retryAfterS: 1, lagMs: () => 5 });
    const t = ticketOf(a.check());
    t.helloReceived();
    expect(a.handshakes).toBe(1);
    t.done();
    t.done(); // idempotent: a welcome and then the socket's close count once
    expect(a.handshakes).toBe(0);
    expect(a.refused).toBe(0);
  });

  it('refuses at the bound of handshakes in flight, with a Retry-After between the base and twice it', () => {
    const low = new Admission({ maxHandshakes: 2, maxLagMs: 0, retryAfterS: 2, random: () => 0 });
    const tickets = [ticketOf(low.check()), ticketOf(low.check())];
    for (const t of tickets) t.helloReceived();
    expect(low.check()).toEqual({ admit: false, reason: 'handshakes', retryAfterS: 2 });
    const high = new Admission({ maxHandshakes: 1, maxLagMs: 0, retryAfterS: 2, random: () => 0.99 });
    ticketOf(high.check()).helloReceived();
    expect(high.check()).toMatchObject({ admit: false, retryAfterS: 4 });
    tickets[0]?.done();
    expect(low.check().admit).toBe(true);
    expect(low.refused).toBe(1);
  });

  it('refuses on lag only during a burst: with LAG_FLOOR handshakes in flight', () => {
    let lag = 100;
    const a = new Admission({ maxHandshakes: 0, maxLagMs: 40, retryAfterS: 1, lagMs: () => lag, random: () => 0 });
    // A slow loop with few clients arriving (GC, a noisy neighbour) admits them.
    const tickets = Array.from({ length: LAG_FLOOR }, () => ticketOf(a.check()));
    for (const t of tickets) t.helloReceived();
    expect(a.check()).toEqual({ admit: false, reason: 'lag', retryAfterS: 1 });
    lag = 40;
    expect(a.check().admit).toBe(true);
  });

  it('stops counting an upgrade whose hello does not come within the grace, not one whose hello is being verified', async () => {
    const a = new Admission({ maxHandshakes: 10, maxLagMs: 0, retryAfterS: 1, helloGraceMs: 20 });
    ticketOf(a.check()); // idle socket: no hello
    const verifying = ticketOf(a.check());
    verifying.helloReceived();
    expect(a.handshakes).toBe(2);
    await waitFor(() => a.handshakes === 1, 'the idle upgrade to stop counting');
    verifying.done();
    expect(a.handshakes).toBe(0);
  });

  it('ends each idle upgrade exactly when its own grace is over, under one timer', () => {
    jest.useFakeTimers();
    try {
      const a = new Admission({ maxHandshakes: 0, maxLagMs: 0, retryAfterS: 1, helloGraceMs: 1_000 });
      const first = ticketOf(a.check());
      jest.advanceTimersByTime(300);
      const verifying = ticketOf(a.check());
      jest.advanceTimersByTime(300);
      ticketOf(a.check());
      verifying.helloReceived();
      expect(jest.getTimerCount()).toBe(1);
      jest.advanceTimersByTime(399); // t = 999
      expect(a.handshakes).toBe(3);
      jest.advanceTimersByTime(1); // t = 1 000: the first one's grace is over
      expect(a.handshakes).toBe(2);
      first.done(); // idempotent: already ended
      expect(a.handshakes).toBe(2);
      jest.advanceTimersByTime(599); // t = 1 599
      expect(a.handshakes).toBe(2);
      jest.advanceTimersByTime(1); // t = 1 600: the third one's
      expect(a.handshakes).toBe(1);
      jest.advanceTimersByTime(10_000);
      expect(a.handshakes).toBe(1);
      verifying.done();
      expect(a.handshakes).toBe(0);
      expect(jest.getTimerCount()).toBe(0);
      // A new burst starts its own queue.
      ticketOf(a.check());
      jest.advanceTimersByTime(999);
      expect(a.handshakes).toBe(1);
      jest.advanceTimersByTime(1);
      expect(a.handshakes).toBe(0);
      expect(jest.getTimerCount()).toBe(0);
    } finally {
      jest.useRealTimers();
    }
  });

  it('reports refusals at most once a second, with the count since the last report', () => {
    const reports: unknown[] = [];
    const a = new Admission({ maxHandshakes: 1, maxLagMs: 0, retryAfterS: 1, onRefusing: (s) => reports.push(s) });
    const t = ticketOf(a.check());
    t.helloReceived();
    for (let i = 0; i < 5; i++) a.check();
    expect(reports).toEqual([{ refused: 1, reason: 'handshakes', handshakes: 1, lagMs: 0 }]);
    expect(a.refused).toBe(5);
    // The burst ends (no handshake in flight): the four refusals since the line are told.
    t.done();
    expect(reports).toEqual([
      { refused: 1, reason: 'handshakes', handshakes: 1, lagMs: 0 },
      { refused: 4, reason: 'handshakes', handshakes: 0, lagMs: 0 },
    ]);
  });

  it('samples the lag only while handshakes are in flight, counting a loop busy right now', () => {
    jest.useFakeTimers();
    try {
      let now = 1_000;
      const a = new Admission({ maxHandshakes: 0, maxLagMs: 40, retryAfterS: 1, now: () => now });
      a.start();
      expect(a.lagMs()).toBe(0); // idle: no sampler runs
      const t = ticketOf(a.check());
      now += LAG_SAMPLE_MS;
      jest.advanceTimersByTime(LAG_SAMPLE_MS); // a tick on time: no lag
      expect(a.lagMs()).toBe(0);
      now += LAG_SAMPLE_MS + 50; // busy: the next tick is 50 ms overdue and has not run yet
      expect(a.lagMs()).toBe(50);
      jest.advanceTimersByTime(LAG_SAMPLE_MS); // the late tick runs and records the lag it saw
      now += 5;
      expect(a.lagMs()).toBe(50);
      t.done();
      expect(a.lagMs()).toBe(0);
      expect(jest.getTimerCount()).toBe(0); // no handshake in flight: the sampler stopped
      a.stop();
    } finally {
      jest.useRealTimers();
    }
  });

  it('measures nothing with the lag bound off, and refuses a Retry-After below 1 s', () => {
    const a = new Admission({ maxHandshakes: 0, maxLagMs: 0, retryAfterS: 1 });
    a.start(); // no sampler: lag is not measured
    expect(a.lagMs()).toBe(0);
    a.stop();
    expect(() => new Admission({ maxHandshakes: 0, maxLagMs: 0, retryAfterS: 0 })).toThrow(TypeError);
  });
});

describe('refuseUpgrade', () => {
  it('writes a 503 with Retry-After and ends the socket', async () => {
    const socket = new PassThrough();
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    const ended = new Promise((resolve) => socket.on('end', resolve));
    refuseUpgrade(socket, 3);
    await ended;
    socket.destroy();
    const text = Buffer.concat(chunks).toString();
    expect(text.startsWith('HTTP/1.1 503 Service Unavailable\r\n')).toBe(true);
    expect(text).toContain('\r\nRetry-After: 3\r\n');
    expect(text.endsWith('\r\n\r\n')).toBe(true);
  });
});
