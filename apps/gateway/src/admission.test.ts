import { PassThrough } from 'node:stream';
import { Admission, refuseUpgrade } from './admission';

describe('Admission', () => {
  it('admits while the loop is on time and few hellos are being verified', () => {
    const a = new Admission({ maxHandshakes: 2, maxLagMs: 40, retryAfterS: 1, lagMs: () => 5 });
    expect(a.check()).toEqual({ admit: true });
    expect(a.refused).toBe(0);
  });

  it('refuses while the event loop runs later than the bound, with a Retry-After between the base and twice it', () => {
    let lag = 100;
    const a = new Admission({ maxHandshakes: 0, maxLagMs: 40, retryAfterS: 2, lagMs: () => lag, random: () => 0 });
    expect(a.check()).toEqual({ admit: false, reason: 'lag', retryAfterS: 2 });
    const high = new Admission({
      maxHandshakes: 0,
      maxLagMs: 40,
      retryAfterS: 2,
      lagMs: () => lag,
      random: () => 0.99,
    });
    expect(high.check()).toMatchObject({ retryAfterS: 4 });
    lag = 40;
    expect(a.check()).toEqual({ admit: true });
    expect(a.refused).toBe(1);
  });

  it('refuses while the bound of hellos being verified is reached; each release (once) makes room', () => {
    const a = new Admission({ maxHandshakes: 2, maxLagMs: 0, retryAfterS: 1, random: () => 0 });
    const first = a.startHandshake();
    const second = a.startHandshake();
    expect(a.handshakes).toBe(2);
    expect(a.check()).toEqual({ admit: false, reason: 'handshakes', retryAfterS: 1 });
    first();
    first(); // idempotent: a hello that ended twice (welcome, then its promise settling) counts once
    expect(a.handshakes).toBe(1);
    expect(a.check()).toEqual({ admit: true });
    second();
    expect(a.handshakes).toBe(0);
  });

  it('reports refusals at most once a second, with the count since the last report', () => {
    const reports: unknown[] = [];
    const a = new Admission({
      maxHandshakes: 0,
      maxLagMs: 10,
      retryAfterS: 1,
      lagMs: () => 50,
      onRefusing: (summary) => reports.push(summary),
    });
    for (let i = 0; i < 5; i++) a.check();
    expect(reports).toEqual([{ refused: 1, reason: 'lag', handshakes: 0, lagMs: 50 }]);
    expect(a.refused).toBe(5);
  });

  it('measures nothing with both bounds off, and refuses a Retry-After below 1 s', () => {
    const a = new Admission({ maxHandshakes: 0, maxLagMs: 0, retryAfterS: 1 });
    a.start(); // no sampler: lag is not measured
    expect(a.lagMs()).toBe(0);
    expect(a.check()).toEqual({ admit: true });
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
