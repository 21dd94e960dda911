import { createServer } from 'node:net';
import WebSocket from 'ws';
import { judgeUpgradeRefusal, neverConnected } from './upgrade-refusal';

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

describe('neverConnected', () => {
  it('is true for the error of a connection nothing accepted (ws, a port where nothing listens)', async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    await new Promise((resolve) => server.close(resolve));
    const socket = new WebSocket(`ws://127.0.0.1:${port}/ws`);
    const error = await new Promise<unknown>((resolve) => socket.once('error', resolve));
    expect(error).toMatchObject({ code: 'ECONNREFUSED' });
    expect(neverConnected(error)).toBe(true);
  });

  it('is true for no DNS answer, false for errors after the connection was made and for anything else', () => {
    expect(neverConnected(Object.assign(new Error('x'), { code: 'ENOTFOUND', syscall: 'getaddrinfo' }))).toBe(true);
    expect(neverConnected(Object.assign(new Error('x'), { code: 'EHOSTUNREACH', syscall: 'connect' }))).toBe(true);
    expect(neverConnected(Object.assign(new Error('x'), { code: 'ECONNRESET', syscall: 'read' }))).toBe(false);
    expect(neverConnected(new Error('WebSocket was closed before the connection was established'))).toBe(false);
    expect(neverConnected(undefined)).toBe(false);
    expect(neverConnected(null)).toBe(false);
  });
});
