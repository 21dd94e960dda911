import type { IncomingMessage, Server } from 'node:http';
import type { Socket } from 'node:net';
import { FifoDeadlines } from '../fifo-deadlines';

/**
 * Drops a TCP connection that has not delivered a complete HTTP request (or
 * WebSocket upgrade) within `deadlineMs` of connecting. Node's own
 * `headersTimeout` must stay above the ALB's keep-alive (66 s here) and is only
 * checked every 30 s; a slow-loris peer holding half-sent upgrades would
 * otherwise keep a socket and its memory for over a minute each.
 *
 * Every connection gets the same `deadlineMs`: they wait under one timer ({@link FifoDeadlines})
 * instead of a `setTimeout` per connection (about 260 bytes for every hello of a reconnect storm).
 */
export function enforceHeaderDeadline(server: Server, deadlineMs: number): void {
  /** Connections whose request is not complete yet. */
  const waiting = new Set<Socket>();
  const deadlines = new FifoDeadlines<Socket>(deadlineMs, {
    isPending: (socket) => waiting.has(socket),
    onDue: (socket) => {
      disarm(socket);
      socket.destroy();
    },
  });

  // Shared functions, removed once the request is complete: an upgraded socket lives
  // for hours and must not carry a listener and a closure of this module meanwhile.
  function disarm(socket: Socket): void {
    if (!waiting.delete(socket)) return;
    socket.off('close', onClose);
    // Nothing waits: the queue (and the sockets it holds) goes, and so does the timer.
    if (waiting.size === 0) deadlines.clear();
  }
  function onClose(this: Socket): void {
    disarm(this);
  }
  server.on('connection', (socket: Socket) => {
    waiting.add(socket);
    deadlines.add(socket);
    socket.on('close', onClose);
  });
  const clear = (req: IncomingMessage) => disarm(req.socket);
  // Listeners are called in order: these run before the gateway's own handlers.
  server.prependListener('request', clear);
  server.prependListener('upgrade', clear);
}
