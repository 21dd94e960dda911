import type { GatewayConfig } from '../config';
import type { Connection } from './session';

/** Sockets pinged per turn of the heartbeat; more are spread over the ping interval. */
export const HEARTBEAT_SLICE = 100;

/**
 * The heartbeat's sweep: pings every socket and terminates those silent for longer
 * than the ping timeout. Clients that cannot see protocol pings (browsers) also get a
 * `ping` frame: their liveness then does not depend on their own, possibly throttled, timers.
 *
 * Spread over the interval in slices of {@link HEARTBEAT_SLICE} sockets: one
 * callback pinging 1 000 sockets kept the event loop busy for about 80 ms,
 * and every event waiting behind it had that much more latency.
 */
export function createHeartbeat(
  connections: ReadonlySet<Connection>,
  config: Pick<GatewayConfig, 'pingIntervalMs' | 'pingTimeoutMs'>,
) {
  /** Timer of the sweep's next slice, while one is spread over the interval. */
  let nextSlice: NodeJS.Timeout | undefined;
  /** When a slice last ran: a run much later than the interval finds the event loop was held up. */
  let lastRun: number | undefined;
  /** The last run judged nobody: the next one judges, late or not (a loop always late still ends silent sockets). */
  let skipped = false;

  function sweep(): void {
    // The last sweep is not done (its timers run late: a busy event loop). It goes on and this
    // one is skipped: starting over would drop its later slices, every sweep, and their sockets
    // would go unpinged, and unchecked, for as long as the loop stays late.
    if (nextSlice) return;
    const all = [...connections];
    const slices = Math.ceil(all.length / HEARTBEAT_SLICE);
    // Done within 80 % of the interval, so two sweeps never overlap.
    const stepMs = slices > 1 ? Math.floor((config.pingIntervalMs * 0.8) / (slices - 1)) : 0;
    const run = (slice: number) => {
      nextSlice = undefined;
      const now = Date.now();
      // The event loop was held up (a long pause of the process: GC, a starved CPU, SIGSTOP). The
      // pongs that came meanwhile wait unread in the sockets, and timers run before they are read:
      // nobody is judged silent in this run, only pinged; the next run judges, with them read.
      const stalled = !skipped && lastRun !== undefined && now - lastRun > 2 * config.pingIntervalMs;
      skipped = stalled;
      lastRun = now;
      for (const conn of all.slice(slice * HEARTBEAT_SLICE, (slice + 1) * HEARTBEAT_SLICE)) {
        if (conn.phase === 'closed') continue;
        // A bucket that has refilled is the same as a new one: the next frame makes one.
        if (conn.limiter?.isFull()) conn.limiter = undefined;
        if (!stalled && now - conn.lastSeen > config.pingTimeoutMs) {
          conn.terminate('ping_timeout');
        } else if (conn.socket.isOpen) {
          conn.socket.ping();
          // Not before the welcome (`early` is dropped once it is out): nothing reaches a client before it.
          if (conn.appPing && conn.phase === 'open' && conn.early === undefined) conn.send({ type: 'ping', ts: now });
        }
      }
      if (slice + 1 < slices) {
        nextSlice = setTimeout(() => run(slice + 1), stepMs);
        nextSlice.unref();
      }
    };
    if (slices > 0) run(0);
  }

  /** Drops the rest of a sweep in progress (shutdown). */
  function stop(): void {
    clearTimeout(nextSlice);
    nextSlice = undefined;
  }

  return { sweep, stop };
}
