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
});
