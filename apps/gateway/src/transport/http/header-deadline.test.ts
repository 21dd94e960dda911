import { EventEmitter } from 'node:events';
import type { IncomingMessage, Server } from 'node:http';
import type { Socket } from 'node:net';
import { enforceHeaderDeadline } from './header-deadline';

/** A socket that records its destruction: the deadline only ever calls destroy() and listens for close. */
const fakeSocket = () => {
  const s = new EventEmitter() as EventEmitter & { destroyed: boolean; destroy(): void };
  s.destroyed = false;
  s.destroy = () => {
    s.destroyed = true;
    s.emit('close');
  };
  return s;
};

describe('enforceHeaderDeadline, on fake timers', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('destroys a socket whose request or upgrade is not complete exactly at the deadline', () => {
    const server = new EventEmitter();
    enforceHeaderDeadline(server as unknown as Server, 400);
    const slow = fakeSocket();
    server.emit('connection', slow as unknown as Socket);
    jest.advanceTimersByTime(399);
    expect(slow.destroyed).toBe(false);
    jest.advanceTimersByTime(1);
    expect(slow.destroyed).toBe(true);
    expect(jest.getTimerCount()).toBe(0);
  });

  it('leaves a socket alone once its upgrade or request is complete, and forgets a closed one', () => {
    const server = new EventEmitter();
    enforceHeaderDeadline(server as unknown as Server, 400);
    const upgraded = fakeSocket();
    const requested = fakeSocket();
    const closed = fakeSocket();
    for (const s of [upgraded, requested, closed]) server.emit('connection', s as unknown as Socket);
    jest.advanceTimersByTime(399);
    server.emit('upgrade', { socket: upgraded } as unknown as IncomingMessage);
    server.emit('request', { socket: requested } as unknown as IncomingMessage);
    closed.emit('close');
    expect(jest.getTimerCount()).toBe(0);
    jest.advanceTimersByTime(10_000);
    expect([upgraded.destroyed, requested.destroyed, closed.destroyed]).toEqual([false, false, false]);
    expect([upgraded, requested, closed].map((s) => s.listenerCount('close'))).toEqual([0, 0, 0]);
  });

  it('gives each connection its own deadline, counted from its connect, under one timer', () => {
    const server = new EventEmitter();
    enforceHeaderDeadline(server as unknown as Server, 400);
    const [a, b, c, d] = [fakeSocket(), fakeSocket(), fakeSocket(), fakeSocket()];
    const destroyed = () => [a, b, c, d].map((s) => s.destroyed);
    server.emit('connection', a as unknown as Socket);
    jest.advanceTimersByTime(100);
    server.emit('connection', b as unknown as Socket);
    jest.advanceTimersByTime(150);
    server.emit('connection', c as unknown as Socket);
    server.emit('connection', d as unknown as Socket);
    expect(jest.getTimerCount()).toBe(1);
    server.emit('upgrade', { socket: a } as unknown as IncomingMessage);
    jest.advanceTimersByTime(249); // t = 499
    expect(destroyed()).toEqual([false, false, false, false]);
    jest.advanceTimersByTime(1); // t = 500: b's deadline
    expect(destroyed()).toEqual([false, true, false, false]);
    server.emit('request', { socket: d } as unknown as IncomingMessage);
    jest.advanceTimersByTime(149); // t = 649
    expect(destroyed()).toEqual([false, true, false, false]);
    jest.advanceTimersByTime(1); // t = 650: c's deadline
    expect(destroyed()).toEqual([false, true, true, false]);
    expect(jest.getTimerCount()).toBe(0);
    // The next connection starts a queue of its own.
    const e = fakeSocket();
    server.emit('connection', e as unknown as Socket);
    jest.advanceTimersByTime(399);
    expect(e.destroyed).toBe(false);
    jest.advanceTimersByTime(1);
    expect(e.destroyed).toBe(true);
    expect([a, b, c, d, e].map((s) => s.listenerCount('close'))).toEqual([0, 0, 0, 0, 0]);
  });

  it('keeps each deadline while thousands of connections come and complete', () => {
    const server = new EventEmitter();
    enforceHeaderDeadline(server as unknown as Server, 400);
    const slow: ReturnType<typeof fakeSocket>[] = [];
    for (let i = 0; i < 5_000; i++) {
      const s = fakeSocket();
      server.emit('connection', s as unknown as Socket);
      if (i % 1_000 === 0) slow.push(s);
      else server.emit('upgrade', { socket: s } as unknown as IncomingMessage);
      if (i % 10 === 0) jest.advanceTimersByTime(1);
    }
    // Now t = 500. The slow ones connected at t = 0, 100, 200, 300 and 400.
    expect(slow.map((s) => s.destroyed)).toEqual([true, true, false, false, false]);
    jest.advanceTimersByTime(99);
    expect(slow.map((s) => s.destroyed)).toEqual([true, true, false, false, false]);
    jest.advanceTimersByTime(1);
    expect(slow.map((s) => s.destroyed)).toEqual([true, true, true, false, false]);
    jest.advanceTimersByTime(199);
    expect(slow.map((s) => s.destroyed)).toEqual([true, true, true, true, false]);
    jest.advanceTimersByTime(1);
    expect(slow.map((s) => s.destroyed)).toEqual([true, true, true, true, true]);
    expect(jest.getTimerCount()).toBe(0);
  });
});
