import type { IncomingMessage, Server } from 'node:http';
import type { Socket } from 'node:net';

/**
 * Drops a TCP connection that has not delivered a complete HTTP request (or
 * WebSocket upgrade) within `deadlineMs` of connecting. Node's own
 * `headersTimeout` must stay above the ALB's keep-alive (66 s here) and is only
 * checked every 30 s; a slow-loris peer holding half-sent upgrades would
 * otherwise keep a socket and its memory for over a minute each.
 */
export function enforceHeaderDeadline(server: Server, deadlineMs: number): void {
  const timers = new WeakMap<Socket, NodeJS.Timeout>();
  // Shared functions, removed once the request is complete: an upgraded socket lives
  // for hours and must not carry a listener and a closure of this module meanwhile.
  function disarm(socket: Socket): void {
    clearTimeout(timers.get(socket));
    timers.delete(socket);
    socket.off('close', onClose);
  }
  function onClose(this: Socket): void {
    disarm(this);
  }
  server.on('connection', (socket: Socket) => {
    const timer = setTimeout(() => socket.destroy(), deadlineMs);
    timer.unref();
    timers.set(socket, timer);
    socket.on('close', onClose);
  });
  const clear = (req: IncomingMessage) => disarm(req.socket);
  // Listeners are called in order: these run before the gateway's own handlers.
  server.prependListener('request', clear);
  server.prependListener('upgrade', clear);
}
