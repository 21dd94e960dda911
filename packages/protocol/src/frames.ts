import * as z from 'zod';
import { CursorSchema, JsonValueSchema, SessionIdSchema, UserIdSchema } from './common';
import { RPC_ERROR_CODES } from './errors';
import { eventUnion } from './events';
import { PROTOCOL_VERSION } from './version';

/** Correlates an RPC request with its result or error. Chosen by the caller, unique per connection. */
export const RpcIdSchema = z.union([z.string().min(1).max(64), z.number().int().nonnegative()]);
export type RpcId = z.infer<typeof RpcIdSchema>;

// ---------------------------------------------------------------------------
// Client to server
// ---------------------------------------------------------------------------

/**
 * The opening handshake, first frame on every connection. Browsers put their
 * token here; servers may send it in the `Authorization: Bearer` header instead.
 */
export const HelloFrameSchema = z.strictObject({
  type: z.literal('hello'),
  /**
   * The protocol version the client speaks. Any positive integer parses, so that a
   * gateway can answer a version it does not speak with close 4010 rather than 4004.
   */
  v: z.number().int().positive(),
  /** Firebase ID token or JWT (HS256, RS256, ES256), unless sent in the Authorization header. */
  token: z.string().min(1).max(8192).optional(),
  /** Only with `AUTH_MODE=none` (development): the user to act as. */
  user_id: UserIdSchema.optional(),
  /** Stable id of this tab or process; the gateway makes one up when absent. */
  session_id: SessionIdSchema.optional(),
  /** The page or service this session serves: kept with the session (`GET /debug`), not written to the registry. */
  route: z.string().max(512).optional(),
  /** Cursor of the last event the client handled: the gateway replays what followed. */
  last_cursor: CursorSchema.optional(),
  /**
   * The client cannot see WebSocket protocol pings (browsers): the gateway sends it
   * app-level `ping` frames instead, which it answers with `pong`. Its own timers may
   * be throttled (background tabs), so liveness is driven from the server side.
   */
  app_ping: z.boolean().optional(),
});
export type HelloFrame = z.infer<typeof HelloFrameSchema>;

/** An RPC call with positional arguments, as in `rpc_call("NAMESPACE.method", args=[...])`. */
export const RpcRequestFrameSchema = z.strictObject({
  type: z.literal('rpc'),
  id: RpcIdSchema,
  method: z.string().min(1).max(128),
  args: z.array(JsonValueSchema),
});
export type RpcRequestFrame = z.infer<typeof RpcRequestFrameSchema>;

/**
 * A fresh token for the open session, sent when the gateway asks (`notice`
 * `token_expiring`) or whenever the client has one: the session is extended
 * without reconnecting. It must name the same user, else the gateway closes 4003.
 */
export const AuthFrameSchema = z.strictObject({
  type: z.literal('auth'),
  token: z.string().min(1).max(8192),
});
export type AuthFrame = z.infer<typeof AuthFrameSchema>;

/** App-level ping (browsers cannot send protocol pings). Answered with `pong` echoing `ts`. */
export const PingFrameSchema = z.strictObject({ type: z.literal('ping'), ts: z.number().optional() });
export type PingFrame = z.infer<typeof PingFrameSchema>;

/** App-level pong, sent by a client answering the server's `ping` frame. */
export const PongFrameSchema = z.strictObject({ type: z.literal('pong'), ts: z.number().optional() });
export type PongFrame = z.infer<typeof PongFrameSchema>;

/** Every frame a client may send. */
export const ClientFrameSchema = z.discriminatedUnion('type', [
  HelloFrameSchema,
  RpcRequestFrameSchema,
  AuthFrameSchema,
  PingFrameSchema,
  PongFrameSchema,
]);
export type ClientFrame = z.infer<typeof ClientFrameSchema>;

// ---------------------------------------------------------------------------
// Server to client
// ---------------------------------------------------------------------------

/** Whether the gateway could continue from the client's `last_cursor`. */
export const ResumeStatusSchema = z.enum([
  /** No cursor was sent: a new stream starts after `cursor`. */
  'fresh',
  /** Every event after `last_cursor` follows, then live events. */
  'resumed',
  /**
   * Events after `last_cursor` are gone (retention or restart): refetch state. The events
   * after `cursor` follow (those of a stream made anew since, from its start), then live ones.
   */
  'gap',
]);
export type ResumeStatus = z.infer<typeof ResumeStatusSchema>;

/** Answer to a valid `hello`: the session is open. */
export const WelcomeFrameSchema = z.strictObject({
  type: z.literal('welcome'),
  v: z.literal(PROTOCOL_VERSION),
  session_id: SessionIdSchema,
  user_id: UserIdSchema,
  /** Which gateway instance serves this session (for support and logs). */
  instance_id: z.string(),
  heartbeat: z.strictObject({
    ping_interval_ms: z.number().int().positive(),
    ping_timeout_ms: z.number().int().positive(),
  }),
  resume: z.strictObject({
    status: ResumeStatusSchema,
    /**
     * Where the session's stream continues: the latest cursor of the user's stream when the
     * session opened; after a `gap` into a stream made anew, right before its replayed events.
     */
    cursor: CursorSchema,
    /** Number of events replayed after this frame (`resumed`, or `gap` into a stream made anew). */
    replayed: z.number().int().nonnegative(),
  }),
});
export type WelcomeFrame = z.infer<typeof WelcomeFrameSchema>;

/** Successful RPC answer. */
export const RpcResultFrameSchema = z.strictObject({
  type: z.literal('rpc_result'),
  id: RpcIdSchema,
  result: JsonValueSchema,
});
export type RpcResultFrame = z.infer<typeof RpcResultFrameSchema>;

/** Wire form of an RPC failure. `data` may carry details such as the invalid path. */
export const RpcErrorBodySchema = z.strictObject({
  code: z.enum(RPC_ERROR_CODES),
  message: z.string(),
  data: JsonValueSchema.optional(),
});
export type RpcErrorBody = z.infer<typeof RpcErrorBodySchema>;

/** Failed RPC answer. */
export const RpcErrorFrameSchema = z.strictObject({
  type: z.literal('rpc_error'),
  id: RpcIdSchema,
  error: RpcErrorBodySchema,
});
export type RpcErrorFrame = z.infer<typeof RpcErrorFrameSchema>;

/** An event for the user, with its per-user cursor and the time it was published (ms since epoch). */
export const EventFrameSchema = eventUnion({ type: z.literal('event'), cursor: CursorSchema, ts: z.number().int() });
export type EventFrame = z.infer<typeof EventFrameSchema>;

/** Something the client should know about its connection. */
export const NoticeFrameSchema = z.strictObject({
  type: z.literal('notice'),
  /**
   * `shutting_down`: close 1012 follows, reconnect after `reconnect_after_ms`.
   * `token_expiring`: send an `auth` frame with a fresh token before `expires_at_ms`
   * (plus the gateway's grace), or the session is closed with 4011.
   * `token_refreshed`: the `auth` frame was accepted; the session now lasts until `expires_at_ms`.
   */
  kind: z.enum(['shutting_down', 'reconnect', 'info', 'token_expiring', 'token_refreshed']),
  message: z.string(),
  /** Wait this long (already jittered by the server) before reconnecting. */
  reconnect_after_ms: z.number().int().nonnegative().optional(),
  /** When the session's current token expires (ms since epoch). */
  expires_at_ms: z.number().int().nonnegative().optional(),
});
export type NoticeFrame = z.infer<typeof NoticeFrameSchema>;

/** A frame-level error not tied to an RPC id (a malformed frame, for example). */
export const ErrorFrameSchema = z.strictObject({
  type: z.literal('error'),
  code: z.enum(['bad_frame', 'not_authenticated', 'rate_limited']),
  message: z.string(),
  issues: z.array(z.strictObject({ path: z.string(), message: z.string() })).optional(),
});
export type ErrorFrame = z.infer<typeof ErrorFrameSchema>;

/** Every frame the server may send. `ping` / `pong` are shared with the client side. */
export const ServerFrameSchema = z.discriminatedUnion('type', [
  WelcomeFrameSchema,
  RpcResultFrameSchema,
  RpcErrorFrameSchema,
  EventFrameSchema,
  NoticeFrameSchema,
  ErrorFrameSchema,
  PingFrameSchema,
  PongFrameSchema,
]);
export type ServerFrame = z.infer<typeof ServerFrameSchema>;

/** Any frame in either direction. */
export type Frame = ClientFrame | ServerFrame;
