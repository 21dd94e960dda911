import {
  CloseCode,
  type HelloFrame,
  PROTOCOL_VERSION,
  parseClientFrame,
  RpcErrorCode,
  RpcIdSchema,
  type RpcRequestFrame,
} from '@livebus/protocol';
import { toRpcError } from '../rpc/rpc-error';
import type { CoreContext } from './context';
import { guarded } from './guard';
import { TokenBucket } from './rate-limiter';
import type { Connection, Session } from './session';
import { closeSlowConsumer, readsTooSlowly } from './slow-consumer';
import { refreshToken } from './tokens';

/** Frames held while a hello is verified, at most; one more closes the socket 4004. */
const MAX_EARLY_FRAMES = 32;

/** Where {@link createFrameDispatch} hands a hello of this protocol version (the handshake). */
export interface FrameDispatchOptions {
  hello(conn: Connection, frame: HelloFrame): void;
}

/**
 * Frame dispatch: every message from a client, in any phase. Rate limited first
 * (when on), then held while the hello is verified, then parsed and routed: the
 * hello to the handshake, and on an open session rpc, auth (token refresh), ping, pong.
 */
export function createFrameDispatch(ctx: CoreContext, { hello }: FrameDispatchOptions) {
  const { config, logger } = ctx;
  /** The parser's limits: one object for every frame. */
  const parseOptions = { maxBytes: config.maxPayloadBytes };
  /** Shared by every connection's bucket; undefined when rate limiting is off. */
  const rateLimit =
    config.rateLimitFramesPerS > 0 ? TokenBucket.policy(config.rateLimitFramesPerS, config.rateLimitBurst) : undefined;

  function badFrame(conn: Connection, message: string, issues?: { path: string; message: string }[], close = false) {
    logger.warn('ws_bad_frame', { uid: conn.session?.uid, session_id: conn.session?.id, message });
    conn.send(
      issues ? { type: 'error', code: 'bad_frame', message, issues } : { type: 'error', code: 'bad_frame', message },
    );
    if (close) conn.close(CloseCode.BadFrame, 'bad frame');
  }

  /**
   * Over the limit: the frame is dropped. A call is answered `rate_limited` by its id (it fails
   * now, not at the client's timeout); the flood's first refusal of another frame is told
   * with an `error` frame. A client refused a whole burst's worth of frames before its bucket refilled (it
   * kept sending faster than the rate, whatever got through meanwhile) is closed 4005.
   */
  function rateLimited(conn: Connection, data: Buffer): void {
    conn.refused++;
    if (conn.refused >= config.rateLimitBurst) {
      conn.close(CloseCode.RateLimited, 'rate limited', 'rate_limited');
      return;
    }
    if (conn.refused === 1) logger.warn('ws_rate_limited', { uid: conn.session?.uid, session_id: conn.session?.id });
    const id = conn.session ? rpcIdOf(data) : undefined;
    if (id !== undefined) {
      conn.send({
        type: 'rpc_error',
        id,
        error: { code: RpcErrorCode.RateLimited, message: 'too many frames; slow down' },
      });
    } else if (conn.refused === 1) {
      conn.send({ type: 'error', code: 'rate_limited', message: 'too many frames; slow down' });
    }
  }

  function onMessage(conn: Connection, data: Buffer, isBinary: boolean): void {
    // Closing: `ws` still hands over what the peer sends until its close frame comes (or 30 s
    // pass). The gateway has ended the connection; what follows is neither read nor answered.
    if (conn.phase === 'closed' || !conn.socket.isOpen) return;
    if (isBinary) {
      badFrame(conn, 'binary frames are not accepted');
      conn.close(CloseCode.UnsupportedData, 'binary frame');
      return;
    }
    // Held from the hello until the welcome is out (handshake.ts replays them then, in order,
    // through here): counted by the limiter once, when replayed, so that no answer (a refusal
    // either) precedes the welcome; until then MAX_EARLY_FRAMES bounds them.
    if (conn.phase === 'authenticating' || conn.phase === 'admitting' || conn.early !== undefined) {
      conn.early ??= [];
      if (conn.early.length >= MAX_EARLY_FRAMES) badFrame(conn, 'too many frames before welcome', undefined, true);
      else conn.early.push(data);
      return;
    }
    // A client that sends but does not read: its answers (pongs, results, errors) would pile up.
    if (readsTooSlowly(conn, config.maxBufferedBytes)) {
      closeSlowConsumer(logger, conn);
      return;
    }
    // The hello is not counted: an open connection in its handshake takes one frame (the hello,
    // or a refused one that closes it; nothing is read once closing, above), and an idle
    // session then never makes a bucket (64 bytes).
    if (rateLimit && conn.phase !== 'handshake') {
      conn.limiter ??= new TokenBucket(rateLimit);
      // The client slowed down until its bucket refilled: the flood is over, its refusals forgiven.
      if (conn.refused > 0 && conn.limiter.isFull()) conn.refused = 0;
      if (!conn.limiter.take()) {
        rateLimited(conn, data);
        return;
      }
    }
    const parsed = parseClientFrame(data, parseOptions);
    if (!parsed.ok) {
      // A call with an id, malformed otherwise (its args not an array, a field too many): answered
      // by that id, so it fails now rather than at the client's timeout.
      const id = conn.session && parsed.error.kind === 'invalid' ? rpcIdOf(data) : undefined;
      if (id !== undefined) {
        const error = { code: RpcErrorCode.InvalidParams, message: parsed.error.message };
        conn.send({ type: 'rpc_error', id, error: { ...error, data: { issues: [...parsed.error.issues] } } });
        return;
      }
      // Before the handshake nothing is trusted: close. After it, report and keep the session.
      badFrame(conn, parsed.error.message, [...parsed.error.issues], conn.phase === 'handshake');
      return;
    }
    const frame = parsed.value;
    if (conn.phase === 'handshake') {
      if (frame.type !== 'hello') badFrame(conn, 'the first frame must be hello', undefined, true);
      else if (frame.v !== PROTOCOL_VERSION) {
        badFrame(conn, `this gateway speaks protocol version ${PROTOCOL_VERSION}`, [
          { path: 'v', message: `unsupported version ${frame.v}` },
        ]);
        conn.close(CloseCode.UnsupportedVersion, 'unsupported version');
      } else hello(conn, frame);
      return;
    }
    const session = conn.session;
    if (!session) return;
    switch (frame.type) {
      case 'hello':
        badFrame(conn, 'hello was already received');
        return;
      case 'ping':
        conn.send(frame.ts === undefined ? { type: 'pong' } : { type: 'pong', ts: frame.ts });
        return;
      case 'pong':
        return;
      case 'rpc':
        guarded(logger, conn, 'rpc', () => onRpc(session, frame));
        return;
      case 'auth':
        guarded(logger, conn, 'auth', () => refreshToken(ctx, session, frame));
        return;
    }
  }

  async function onRpc(session: Session, frame: RpcRequestFrame): Promise<void> {
    const conn = session.connection;
    let answered = false;
    try {
      const rpc = { principal: session.principal, sessionId: session.id, transport: 'ws' as const };
      const result = await ctx.dispatch(rpc, frame.method, frame.args);
      answered = true;
      // A result the frame refuses (not JSON) throws here, and is answered as an error below.
      if (answerable(conn)) conn.send({ type: 'rpc_result', id: frame.id, result });
    } catch (error) {
      // The dispatcher logged its own failures; a result it passed that no frame can carry is a bug.
      if (answered) logger.error('rpc_error', { method: frame.method, error: String(error) });
      if (answerable(conn)) conn.send({ type: 'rpc_error', id: frame.id, error: toRpcError(error).toWire() });
    }
  }

  /**
   * Whether a call's answer may go out now: not to a closing socket, nor to a client that reads
   * nothing (many calls, large results would pile up): that one is closed 4007 instead.
   */
  function answerable(conn: Connection): boolean {
    if (!conn.socket.isOpen) return false;
    if (!readsTooSlowly(conn, config.maxBufferedBytes)) return true;
    closeSlowConsumer(logger, conn);
    return false;
  }

  return { onMessage, badFrame };
}

/** The id of an `rpc` frame the protocol refused, when it has a usable one (a string or an integer). */
function rpcIdOf(data: Buffer): string | number | undefined {
  try {
    const frame = JSON.parse(data.toString()) as { type?: unknown; id?: unknown };
    if (frame?.type !== 'rpc') return undefined;
    const id = RpcIdSchema.safeParse(frame.id);
    return id.success ? id.data : undefined;
  } catch {
    return undefined;
  }
}

/** The frame dispatch of a connection handler. */
export type FrameDispatch = ReturnType<typeof createFrameDispatch>;
