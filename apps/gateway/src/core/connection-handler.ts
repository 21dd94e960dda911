import { CloseCode } from '@livebus/protocol';
import type { RegistrationMessage, ReplaceMessage } from '../fleet/instances/instance-channel';
import { createClosing } from './closing';
import type { ConnectionHandlerDeps, CoreContext, HandshakeCount } from './context';
import { createFrameDispatch } from './frames';
import { guarded, handlerFailed } from './guard';
import { createHandshake } from './handshake';
import { createHeartbeat } from './heartbeat';
import { admittingKey, entryOf, rereadRegistration } from './presence-entries';
import type { Connection } from './session';
import type { CoreSocket, SocketEvents, SocketRequest } from './socket';
import { createSessionLifetime } from './tokens';

export type { ConnectionHandlerDeps } from './context';

/*
 * One connection, from accept to close (the transport refused what it had to before:
 * other paths 404, other Origins 403, a draining instance or an admission storm 503):
 *
 *   accept --> handshake --hello--> authenticating --ok--> admitting --admitted--> open --close--> closed
 *                 |                      |                    |                       |
 *                 +-- bad frame: 4004    +-- bad token: 4001  +-- presence away,      +-- frames: rpc, auth, ping, pong
 *                 +-- other version: 4010                     |   session limit:      +-- token expired: 4011
 *                 |                                           |   1013, 4006
 *   the handshake timer, from accept until the welcome is out (open waits for the user's stream):
 *     no hello, or its token check, in time: 4002; presence or the stream not answering: 1013
 *
 * The units: handshake.ts (hello -> auth -> welcome, with its timer and held frames),
 * resume.ts (welcome and replay from a cursor), frames.ts (dispatch, rate limit),
 * tokens.ts (in-band auth, token lifetime), heartbeat.ts (the sliced ping sweep) and
 * closing.ts (close bookkeeping). Frames that arrive while the token is checked are held
 * and handled after the welcome, so a client may pipeline its first calls behind its
 * hello. Every handler runs behind a guard (guard.ts): an exception closes that one
 * socket with 1011 and is logged as `ws_handler_error`; the process keeps serving.
 */
export function createConnectionHandler(deps: ConnectionHandlerDeps) {
  const ctx: CoreContext = {
    ...deps,
    connections: new Set<Connection>(),
    counts: new WeakMap<Connection, HandshakeCount>(),
    admitting: new Map(),
    lifetime: createSessionLifetime(deps),
    waitingTurn: new WeakSet<Connection>(),
  };
  const { connections, logger, hub } = ctx;
  const frames = createFrameDispatch(ctx, { hello: (conn, frame) => handshake.hello(conn, frame) });
  const handshake = createHandshake(ctx, {
    replay: (conn, data) => guarded(logger, conn, 'message', () => frames.onMessage(conn, data, false)),
  });
  const closing = createClosing(ctx);
  const heartbeat = createHeartbeat(connections, deps.config);

  /**
   * A socket the transport accepted: the core owns it from here to its close.
   * `count`: admission control counts this connection until its welcome (or failure).
   */
  function open(socket: CoreSocket, request: SocketRequest, count?: HandshakeCount): void {
    const conn = handshake.accept(socket, request, count);
    socket.listen(conn, events);
    // A hello carried in the upgrade is the connection's first frame, checked as one.
    if (request.hello) events.message(conn, request.hello, false);
  }

  /** Every connection's events, one set of functions for all of them (no closures per connection). */
  const events: SocketEvents<Connection> = {
    message(conn, data, isBinary) {
      conn.lastSeen = Date.now();
      // Guarded as guard.ts does, inline: no closure per frame (onMessage returns nothing).
      try {
        frames.onMessage(conn, data, isBinary);
      } catch (error) {
        handlerFailed(logger, conn, 'message', error);
      }
    },
    alive(conn) {
      conn.lastSeen = Date.now();
    },
    close(conn, code, reason) {
      guarded(logger, conn, 'close', () => closing.onClose(conn, code, reason));
    },
  };

  /** Another instance took over one of our sessions (same session id): close the old socket. */
  function onControl(message: ReplaceMessage): void {
    const session = hub.get(message.uid, message.session_id);
    if (session) session.connection.close(CloseCode.Replaced, 'replaced');
  }

  /**
   * Another instance changed the registry entry of a session of ours (a register or unregister
   * that went through it): the session reads the entry again. A hello of the session id still
   * being admitted reads it once its session opens (its presence write read the entry maybe
   * before the change).
   */
  function onRegistration(message: RegistrationMessage): void {
    const { uid, session_id: sessionId } = message;
    const admitting = ctx.admitting.get(admittingKey(uid, sessionId));
    if (admitting) admitting.registrationChanged = true;
    const session = hub.get(uid, sessionId);
    if (session) rereadRegistration(ctx, session);
  }

  /**
   * Writes the user's sessions of this instance to presence again (their entries expired during a
   * stall), each with its registry entry where the stall took that too: one atomic step, so a
   * failure leaves the user lost, for the next beat to try again.
   */
  async function reannounce(uid: string): Promise<void> {
    for (const session of hub.sessionsOf(uid)) {
      // Never over another instance's entry: a reconnect there took the session over, and this
      // socket (half-open, its close handshake pending) is the stale one.
      if (!session.connection.socket.isOpen) continue;
      const registration = session.registration;
      const added = await deps.presence.add(uid, entryOf(ctx, session), {
        reannounce: true,
        ...(registration ? { registration } : {}),
      });
      // Held elsewhere: the message that would have closed this socket was lost (this instance's
      // subscriber reconnecting) or never sent (its entry had expired when the other took over).
      if (added.refused && added.heldElsewhere) session.connection.close(CloseCode.Replaced, 'replaced');
    }
  }

  /**
   * This instance's presence entries of the user that no session or hello here holds any more:
   * their remove failed when they closed (Redis away), and they would keep the user present, and
   * the departure uncleaned, until they expire. Removes them; resolves with how many.
   */
  async function removeLeftEntries(uid: string): Promise<number> {
    const me = deps.config.instanceId;
    let removed = 0;
    for (const entry of await deps.presence.sessions(uid)) {
      if (entry.instanceId !== me || hub.get(uid, entry.sessionId)) continue;
      if (ctx.admitting.has(admittingKey(uid, entry.sessionId))) continue;
      if (await deps.presence.remove(uid, entry.sessionId, me)) removed++;
    }
    return removed;
  }

  /** Shutdown: a notice with a jittered reconnect hint, then close 1012, to every connection. */
  function closeAll(spreadMs: number): void {
    heartbeat.stop();
    for (const conn of connections) {
      const hint = Math.floor(Math.random() * spreadMs);
      conn.send({ type: 'notice', kind: 'shutting_down', message: 'instance is restarting', reconnect_after_ms: hint });
      conn.close(CloseCode.ServiceRestart, 'service restart', 'service_restart');
    }
  }

  /**
   * Drops every connection left, and closes each here and now: the socket's own close event
   * comes a turn or more later (then a no-op), and shutdown's `settled()` that follows must find
   * these sessions leaving presence, not yet open.
   */
  function terminateAll(): void {
    heartbeat.stop();
    for (const conn of [...connections]) {
      conn.terminate();
      events.close(conn, 1006, '');
    }
  }

  return {
    open,
    /** One heartbeat sweep (heartbeat.ts); the gateway calls it every ping interval. */
    heartbeat: heartbeat.sweep,
    onControl,
    onRegistration,
    reannounce,
    removeLeftEntries,
    closeAll,
    terminateAll,
    settled: closing.settled,
    get count() {
      return connections.size;
    },
  };
}

/** The connection handler of a gateway. */
export type ConnectionHandler = ReturnType<typeof createConnectionHandler>;
