import { randomUUID } from 'node:crypto';
import { CloseCode, type HelloFrame } from '@livebus/protocol';
import { AuthError, type Principal } from '../auth/authenticator';
import type { CoreContext, HandshakeCount } from './context';
import { guarded } from './guard';
import { admit, endAdmitting, rereadRegistration, startAdmitting, stillOpening } from './presence-entries';
import { nextTurn, welcome } from './resume';
import { Connection, Session } from './session';
import type { GatewaySocket, SocketRequest } from './socket';

/** Where the handshake hands the frames a client pipelined behind its hello, once its session is open. */
export interface HandshakeOptions {
  replay(conn: Connection, frame: Buffer): void;
}

/**
 * hello -> auth -> welcome. A connection has `handshakeTimeoutMs` from accept to its
 * welcome: past it, 4002 while no hello came or its token is still being checked, 1013 once the
 * token was accepted (the fleet's own steps, presence and the user's stream, did not answer in
 * time: the gateway's side, and the client may try again); a refused token closes 4001 (its
 * reason: the protocol's auth failure code), a draining instance 1012, presence away 1013, one
 * session too many 4006. Frames that arrive while the hello is verified are held (frames.ts) and
 * replayed after the welcome.
 */
export function createHandshake(ctx: CoreContext, { replay }: HandshakeOptions) {
  const { config, logger, hooks } = ctx;

  /** A new connection: counted, rate limited (when on), with its handshake deadline. */
  function accept(socket: GatewaySocket, request: SocketRequest, count?: HandshakeCount): Connection {
    const conn = new Connection(socket, bearerOf(request));
    ctx.connections.add(conn);
    if (count) ctx.counts.set(conn, count);
    conn.handshakeTimer = setTimeout(() => handshakeTimedOut(ctx, conn, admittingSessions), config.handshakeTimeoutMs);
    return conn;
  }

  /** The session of each hello the fleet is admitting (phase `admitting`), for {@link handshakeTimedOut}. */
  const admittingSessions = new Map<Connection, Session>();

  /** A hello of this protocol version, on a connection in its handshake. */
  function hello(conn: Connection, frame: HelloFrame): void {
    // Admission control counts the handshake until the welcome is sent or the hello fails.
    const count = ctx.counts.get(conn);
    count?.helloReceived();
    guarded(logger, conn, 'hello', () => onHello(conn, frame).finally(() => handshakeDone(conn)));
  }

  /** The welcome is out, or the hello failed: admission control stops counting this connection. */
  function handshakeDone(conn: Connection): void {
    conn.socket.flush?.();
    ctx.counts.get(conn)?.done();
    ctx.counts.delete(conn);
  }

  async function authenticate(conn: Connection, frame: HelloFrame): Promise<Principal | undefined> {
    const token = frame.token ?? conn.bearer;
    conn.bearer = undefined;
    try {
      return await ctx.auth.authenticate({ token, userId: frame.user_id });
    } catch (error) {
      // Never the token itself.
      hooks.emit(
        'session.auth_failed',
        error instanceof AuthError
          ? { reason: error.reason, code: error.code, error: error.message }
          : { reason: 'error', code: 'internal_error', error: String(error) },
      );
      // The reason is one of the protocol's auth failure reasons: the client shows it, and it says nothing secret.
      conn.close(CloseCode.AuthFailed, error instanceof AuthError ? error.code : 'internal_error');
      return undefined;
    }
  }

  /** The session takes its place: in the hub, with the user's listeners, instead of the one it replaces. */
  function open(session: Session, frame: HelloFrame, replacedElsewhere: string | undefined) {
    const { uid, id: sessionId, connection: conn } = session;
    const replaced = ctx.hub.get(uid, sessionId);
    if (replacedElsewhere !== undefined && replacedElsewhere !== config.instanceId) {
      ctx.channel
        .send(replacedElsewhere, { type: 'replace', uid, session_id: sessionId })
        .catch((error: unknown) =>
          logger.warn('presence_error', { uid, session_id: sessionId, op: 'replace', error: String(error) }),
        );
    }
    conn.session = session;
    conn.phase = 'open';
    // Frames keep being held until the welcome is out (the bus subscription and the reads come
    // first): nothing reaches the client before its welcome, and they run in the order sent.
    conn.early ??= [];
    conn.appPing = frame.app_ping === true;
    const subscribed = ctx.hub.add(session);
    const attached = ctx.listeners.sessionOpened(uid, sessionId);
    if (replaced) {
      // The same tab reconnecting before its old socket timed out: the new one takes its place.
      // Opened before closed, so the user never drops to zero sessions and no detach starts.
      replaced.replaced = true;
      ctx.listeners.sessionClosed(uid, sessionId);
      replaced.connection.close(CloseCode.Replaced, 'replaced');
    }
    hooks.emit('session.open', {
      uid,
      sessionId,
      service: session.principal.service,
      ...(frame.last_cursor === undefined ? {} : { resumeFrom: frame.last_cursor }),
    });
    return { subscribed, attached };
  }

  async function onHello(conn: Connection, frame: HelloFrame): Promise<void> {
    conn.phase = 'authenticating';
    const principal = await authenticate(conn, frame);
    if (!principal || conn.phase !== 'authenticating' || !conn.socket.isOpen) return;
    if (ctx.isDraining()) {
      conn.close(CloseCode.ServiceRestart, 'service restart');
      return;
    }
    conn.phase = 'admitting';
    const session = new Session(
      frame.session_id ?? randomUUID(),
      principal,
      frame.route ?? '',
      conn,
      frame.last_cursor,
    );
    // The user's bus subscription starts now, alongside the presence write: one round trip
    // less before the welcome. The session is added (and waits for it) only once admitted.
    const uid = session.uid;
    let opened: ReturnType<typeof open> | undefined;
    const admitting = startAdmitting(ctx, session);
    admittingSessions.set(conn, session);
    try {
      // Inside the try: a bus that throws at once still gets its hold released.
      ctx.hub.reserve(uid, frame.last_cursor);
      let added = await admit(ctx, session, admitting);
      if (added && ctx.slices) {
        // The session opens, and then its welcome goes out, in slices of the event loop.
        await nextTurn(ctx, conn);
        if (!stillOpening(conn)) added = undefined;
      }
      // An entry held elsewhere, unless the store told its instance already.
      if (added) {
        session.registration = added.registration;
        opened = open(session, frame, added.holderTold ? undefined : added.replaced?.instanceId);
        if (admitting.registrationChanged) rereadRegistration(ctx, session);
      }
    } finally {
      admittingSessions.delete(conn);
      ctx.hub.release(uid);
      // Gave up: its entry is taken back, unless a newer hello or session of the id holds it.
      endAdmitting(ctx, session, admitting, opened !== undefined);
    }
    if (!opened) return;
    const { subscribed, attached } = opened;
    if (!(await welcome(ctx, session, frame.last_cursor, subscribed))) return;
    clearTimeout(conn.handshakeTimer);
    // A cleared Timeout held for the connection's life costs about 200 bytes (with its closure).
    conn.handshakeTimer = undefined;
    handshakeDone(conn);
    const early = conn.early;
    conn.early = undefined;
    for (const data of early ?? []) replay(conn, data);
    await attached;
  }

  return { accept, hello, handshakeDone };
}

/**
 * The handshake deadline passed without a welcome (the timer is cleared once it is out): 4002
 * while the hello or its token is awaited, 1013 once the fleet's own steps are (see
 * {@link createHandshake}).
 */
function handshakeTimedOut(
  { config, logger, waitingTurn }: Pick<CoreContext, 'config' | 'logger' | 'waitingTurn'>,
  conn: Connection,
  admittingSessions: ReadonlyMap<Connection, Session>,
): void {
  // Closed already for a reason of its own, its peer's close frame not yet in.
  if (!conn.socket.isOpen) return;
  if (conn.phase === 'handshake' || conn.phase === 'authenticating') {
    conn.close(CloseCode.AuthTimeout, 'auth timeout');
    return;
  }
  if (conn.phase !== 'admitting' && conn.phase !== 'open') return;
  // The token was accepted: what did not answer is the fleet's (a Redis node frozen or away), or
  // the event loop did not reach the hello's turn (a storm on a process short of CPU).
  const session = conn.session ?? admittingSessions.get(conn);
  logger.warn('handshake_stalled', {
    ...(session ? { uid: session.uid, session_id: session.id } : {}),
    waiting_for: waitingTurn.has(conn) ? 'turn' : conn.phase === 'admitting' ? 'presence' : 'stream',
    timeout_ms: config.handshakeTimeoutMs,
  });
  conn.close(CloseCode.TryAgainLater, 'try again later');
}

/** The token of an `Authorization: Bearer` header (clients that cannot put it in their hello). */
function bearerOf(request: SocketRequest): string | undefined {
  const header = request.headers.authorization;
  if (typeof header !== 'string' || !header.startsWith('Bearer ')) return undefined;
  return header.slice(7).trim() || undefined;
}
