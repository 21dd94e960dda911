import type { Logger } from '../logger';

// The shutdown sequence lives in core/ because it only orders the gateway's own units
// through the small interface below: it knows no ws, no HTTP server and no backend (the
// gateway passes those steps in), so it is tested with fakes in milliseconds.

/** The connections a gateway holds, as the shutdown sequence drains them. */
export interface DrainableConnections {
  readonly count: number;
  /** A notice with a reconnect hint spread over `spreadMs`, then a close 1012, to every connection. */
  closeAll(spreadMs: number): void;
  /** Drops whatever did not complete its close handshake. */
  terminateAll(): void;
  /** Settles once every closed session has been handed to the listeners manager. */
  settled(): Promise<void>;
}

/** The steps of a graceful shutdown, in the order {@link runShutdown} takes them. */
export interface ShutdownSteps {
  /** Stops the timers (heartbeats, sweeps) and admission control. */
  stopTimers(): void;
  /** Stops accepting connections; resolves once the listening socket has closed. */
  stopAccepting(): Promise<void>;
  connections: DrainableConnections;
  /**
   * Runs the pending detaches, so no registry entry outlives the process: after
   * `reconnectWindowMs` (in which the closed clients were told to come back elsewhere) when the
   * gateway is one of a fleet, else now.
   */
  flushListeners(reconnectWindowMs: number): Promise<void>;
  /** Closes the HTTP connections that carry no request (kept alive between requests). */
  dropIdleHttp(): void;
  /** Cuts what still holds the listening socket open (requests still running past their share of the grace). */
  dropAllHttp(): void;
  /** Closes the task queue (in-process tasks stop; a BullMQ queue disconnects). */
  closeTasks(): Promise<void>;
  /** Removes this instance from the fleet's presence directory at once, rather than by expiry. */
  retire(): Promise<void>;
  /** Closes the ports (bus, registry, instance channel), in parallel. */
  closePorts(): Promise<unknown>;
  /** Last: closes what the composition root opened (Redis clients, Firebase apps). */
  onClose?: () => Promise<void>;
  /** Stops the health thread (HEALTH_PORT), after everything else. */
  stopHealth?: () => Promise<void>;
}

/** Options of {@link runShutdown}. */
export interface ShutdownOptions {
  reason: string;
  /** SHUTDOWN_GRACE_MS: the whole sequence is done within it, whatever hangs. */
  graceMs: number;
  logger: Logger;
  /** How often the close handshakes are checked. @default 20 */
  pollMs?: number;
}

/**
 * Graceful shutdown: every client is told to reconnect elsewhere (1012, with a jittered
 * hint so the remaining instances are not hit all at once), pending detaches are flushed,
 * then the ports and clients are closed. Each waiting step is cut at its share of the
 * grace period, and a failing step does not stop the ones after it.
 */
export async function runShutdown(steps: ShutdownSteps, options: ShutdownOptions): Promise<void> {
  const { graceMs, logger } = options;
  const deadline = Date.now() + graceMs;
  const left = () => Math.max(0, deadline - Date.now());
  const { connections } = steps;
  logger.info('gateway_shutdown_start', { reason: options.reason, connections: connections.count, grace_ms: graceMs });
  steps.stopTimers();
  const closed = steps.stopAccepting();
  // Spread reconnects over a window so the remaining instances are not hit all at once.
  const spreadMs = Math.min(5_000, Math.max(500, graceMs / 2));
  connections.closeAll(spreadMs);
  // Wait for close handshakes, but not past a share of the grace period.
  const closeBy = deadline - Math.min(2_000, graceMs / 2);
  while (connections.count > 0 && Date.now() < closeBy) await new Promise((r) => setTimeout(r, options.pollMs ?? 20));
  connections.terminateAll();
  // The clients come back within the spread (and a connect): their detaches wait for that, but
  // leave the steps after them about 1.5 s of the grace (counted once the sessions are settled).
  const closedAt = Date.now();
  await withDeadline(
    connections
      .settled()
      .then(() =>
        steps.flushListeners(Math.max(0, Math.min(spreadMs + 500 - (Date.now() - closedAt), left() - 1_500))),
      ),
    left(),
  );
  // Each within what is left: a Redis that answers nothing (frozen, its address blackholed)
  // would hold the retire's and the ports' commands for ever. The last steps keep a share: they
  // close the clients the ports still use (a bus draining its outbox), and an embedder's
  // shutdown() resolves once they are done.
  const lastSteps = Math.min(1_000, graceMs / 4);
  // Requests in flight get their answer (a publish retrying through a Redis blip, a TASK.cancel
  // waiting for its worker): the server closes once they have, or they are cut when only the
  // last steps' shares are left. A dashboard stream ends by itself once the gateway drains.
  // A connection that answers its request later goes idle then (a dashboard stream ends itself
  // too): dropped as soon as it does, not when the wait is over.
  steps.dropIdleHttp();
  const dropping = setInterval(() => steps.dropIdleHttp(), options.pollMs ?? 20);
  await withDeadline(closed, left() - 3 * lastSteps);
  clearInterval(dropping);
  steps.dropAllHttp();
  await withDeadline(closed, left() - 2 * lastSteps);
  await withDeadline(steps.closeTasks(), left() - 2 * lastSteps);
  await withDeadline(steps.retire(), left() - lastSteps);
  await withDeadline(steps.closePorts(), left() - lastSteps);
  await withDeadline(steps.onClose?.() ?? Promise.resolve(), left());
  await withDeadline(steps.stopHealth?.() ?? Promise.resolve(), left());
  logger.info('gateway_shutdown_complete', { took_ms: graceMs - (deadline - Date.now()) });
}

/** Waits for `promise`, but at most `ms`; never rejects. */
function withDeadline(promise: Promise<unknown>, ms: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const t = setTimeout(resolve, Math.max(0, ms));
    promise.then(
      () => {
        clearTimeout(t);
        resolve();
      },
      () => {
        clearTimeout(t);
        resolve();
      },
    );
  });
}
