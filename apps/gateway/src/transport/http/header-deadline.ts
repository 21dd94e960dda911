import type { IncomingMessage, Server } from 'node:http';
import type { Socket } from 'node:net';

/**
 * Drops a TCP connection that has not delivered a complete HTTP request (or
 * WebSocket upgrade) within `deadlineMs` of connecting. Node's own
 * `headersTimeout` must stay above the ALB's keep-alive (66 s here) and is only
 * checked every 30 s; a slow-loris peer holding half-sent upgrades would
 * otherwise keep a socket and its memory for over a minute each.
 *
 * Every connection gets the same `deadlineMs`, so deadlines come due in the order the
 * connections came: they wait in one queue under one timer, armed for the oldest
 * connection still waiting. A `setTimeout` per connection cost a Timeout, a closure and
 * its context (about 260 bytes) for every hello of a reconnect storm.
 */
export function enforceHeaderDeadline(server: Server, deadlineMs: number): void {
  /** Connections whose request is not complete yet. */
  const waiting = new Set<Socket>();
  /** Every connection since the queue was last empty, with its deadline, oldest first. */
  let queue: Socket[] = [];
  let dues: number[] = [];
  let head = 0;
  let timer: NodeJS.Timeout | undefined;
  let armedFor = Number.POSITIVE_INFINITY;

  function arm(due: number, now: number): void {
    if (timer !== undefined && armedFor <= due) return;
    clearTimeout(timer);
    armedFor = due;
    timer = setTimeout(expire, Math.max(0, due - now));
    timer.unref();
  }

  /** Destroys the connections whose deadline passed, then waits for the oldest one left. */
  function expire(): void {
    timer = undefined;
    armedFor = Number.POSITIVE_INFINITY;
    const now = performance.now();
    while (head < queue.length) {
      const socket = queue[head] as Socket;
      if (!waiting.has(socket)) {
        // Its request came (or it closed): nothing to do, whenever its deadline is.
        queue[head++] = undefined as unknown as Socket;
        continue;
      }
      const due = dues[head] as number;
      if (due > now) {
        // Connections keep coming while others wait: the queue drops what it has passed.
        if (head >= 1024 && head * 2 >= queue.length) {
          queue = queue.slice(head);
          dues = dues.slice(head);
          head = 0;
        }
        arm(due, now);
        return;
      }
      queue[head++] = undefined as unknown as Socket;
      disarm(socket);
      socket.destroy();
    }
    reset();
  }

  function reset(): void {
    clearTimeout(timer);
    timer = undefined;
    armedFor = Number.POSITIVE_INFINITY;
    queue = [];
    dues = [];
    head = 0;
  }

  // Shared functions, removed once the request is complete: an upgraded socket lives
  // for hours and must not carry a listener and a closure of this module meanwhile.
  function disarm(socket: Socket): void {
    if (!waiting.delete(socket)) return;
    socket.off('close', onClose);
    // Nothing waits: the queue (and the sockets it holds) goes, and so does the timer.
    if (waiting.size === 0) reset();
  }
  function onClose(this: Socket): void {
    disarm(this);
  }
  server.on('connection', (socket: Socket) => {
    const now = performance.now();
    const due = now + deadlineMs;
    waiting.add(socket);
    queue.push(socket);
    dues.push(due);
    socket.on('close', onClose);
    arm(due, now);
  });
  const clear = (req: IncomingMessage) => disarm(req.socket);
  // Listeners are called in order: these run before the gateway's own handlers.
  server.prependListener('request', clear);
  server.prependListener('upgrade', clear);
}
