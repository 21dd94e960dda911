import { isCursor, isSessionId, isUserId, protocolDefaults } from '@livebus/protocol/client';
import type { Backoff } from './backoff';
import type { WebSocketLike } from './transport/socket';

/** Options of {@link BusConsumer}. */
export interface ConsumerOptions {
  /**
   * The gateway's WebSocket URL, e.g. `wss://rt.example.com/ws` (`http(s)://` works too, and in
   * a browser a path relative to the page). A URL without a scheme is refused with a `TypeError`.
   */
  url: string;
  /**
   * A Firebase ID token or JWT, used as is on every connect. It cannot be
   * refreshed: when it expires the gateway closes the session (4011) and the
   * client stops. Use `getToken` for tokens that expire.
   */
  token?: string;
  /**
   * Called for a fresh token on every (re)connect and when the gateway says the
   * session's token is about to expire (sent in-band, without reconnecting),
   * e.g. `() => auth.currentUser?.getIdToken()` (after `await auth.authStateReady()`). After an
   * auth failure it is called once more before the client gives up. No token (`undefined`, `''`)
   * is an error, as a throw is: on connect the client sends no hello, emits `error` and retries
   * with backoff (unless `userId` is set: the hello then goes without one); on a refresh it keeps
   * the session.
   */
  getToken?: () => string | undefined | Promise<string | undefined>;
  /** Only for gateways running with AUTH_MODE=none (development). */
  userId?: string;
  /** Stable id of this tab or process. @default a random UUID per client */
  sessionId?: string;
  /**
   * The page or service this session serves. Informational: the gateway keeps it
   * with the session (shown on GET /debug) but does not write it to the registry;
   * `REGISTRY.register_user(user_id, session_id, route)` does.
   */
  route?: string;
  /** Ping the gateway this often. @default 20_000 */
  pingIntervalMs?: number;
  /** Declare the gateway dead after this long without hearing from it. @default 60_000 */
  pingTimeoutMs?: number;
  /**
   * When the watchdog runs late (more than `pingIntervalMs / 2` after it was
   * due: a throttled background tab, a sleeping machine) and finds the gateway
   * silent, it pings and waits this long for any frame before declaring the
   * gateway dead. 0 declares it dead at once.
   * @default Math.min(pingIntervalMs, 5_000)
   */
  lateWakeupGraceMs?: number;
  /** Ceiling of the first reconnect delay. @default 500 */
  minReconnectDelayMs?: number;
  /** Largest reconnect delay. @default 30_000 */
  maxReconnectDelayMs?: number;
  /**
   * For this long after a session is lost (or after `connect()`), an attempt that never reached a
   * gateway (Node: its TCP connection was refused, unreachable or without a DNS answer) does
   * not double the backoff's ceiling: a gateway restarting in place is retried within
   * `minReconnectDelayMs` until it listens again. Attempts that reached a gateway, and every attempt
   * after this window, double it as usual. Browsers hide why an attempt failed: there every failure
   * doubles it. 0: every failure doubles it. @default 3_000
   */
  networkRetryWindowMs?: number;
  /**
   * Time allowed for one attempt, from its start (a `getToken` call included) to `welcome`. Keep it
   * above the gateway's `HANDSHAKE_TIMEOUT_MS` (10 s, from its accept), so that a gateway that cannot
   * finish the handshake says why (1013) before the client gives up (when the token and the connect
   * take under 2 s). @default 12_000
   */
  handshakeTimeoutMs?: number;
  /** Per-call RPC timeout, counted from the call (queue time included). @default 10_000 */
  rpcTimeoutMs?: number;
  /** What `rpc()` does while disconnected: queue until reconnected, or fail at once. @default 'queue' */
  whileDisconnected?: 'queue' | 'fail';
  /** Calls held while disconnected; beyond it `rpc()` fails. @default 100 */
  maxQueuedCalls?: number;
  /**
   * Resume after this cursor on the first connect (e.g. persisted by the app): one the client gave
   * (`lastCursor`, an event's `cursor`). `null` counts as none (`sessionStorage.getItem` on a first
   * visit); any other value that is not a cursor is refused with a `TypeError`.
   */
  lastCursor?: string | null;
  /** Reconnect delay function. @default full-jitter exponential backoff between the two delays above */
  backoff?: Backoff;
  /**
   * Carry the hello in the WebSocket upgrade (its `Sec-WebSocket-Protocol` header) rather than as
   * the first frame: one round trip less per connect. A gateway that does not read it there (an
   * older release) gets the hello as a frame, on the same socket. Turn it off only behind a proxy
   * that drops or rewrites that header. @default true
   */
  helloInUpgrade?: boolean;
  /** WebSocket constructor; `protocols` are offered when the hello travels in the upgrade. @default `ws` in Node, the global WebSocket in browsers */
  WebSocket?: new (
    url: string,
    protocols?: string[],
  ) => WebSocketLike;
}

/** Defaults of {@link ConsumerOptions}; `lateWakeupGraceMs` depends on `pingIntervalMs`, see {@link resolveOptions}. */
export const consumerDefaults = {
  pingIntervalMs: protocolDefaults.pingIntervalMs,
  pingTimeoutMs: protocolDefaults.pingTimeoutMs,
  minReconnectDelayMs: 500,
  maxReconnectDelayMs: 30_000,
  networkRetryWindowMs: 3_000,
  handshakeTimeoutMs: protocolDefaults.clientHandshakeTimeoutMs,
  rpcTimeoutMs: 10_000,
  whileDisconnected: 'queue',
  maxQueuedCalls: 100,
  helloInUpgrade: true,
} satisfies Partial<ConsumerOptions>;

/** Options with every default applied. */
export type ResolvedOptions = ConsumerOptions &
  Required<Omit<ConsumerOptions, 'token' | 'getToken' | 'userId' | 'route' | 'lastCursor' | 'backoff' | 'WebSocket'>>;

/** Applies the defaults and refuses contradicting options with a `TypeError`. */
export function resolveOptions(options: ConsumerOptions, sessionId: () => string): ResolvedOptions {
  // Object.assign copies what a spread would ({ ...consumerDefaults, ...options }) several times
  // faster (a client is built per connect in load tests); only an own "__proto__" key, which it
  // would set as the prototype, takes the spread.
  const o = (
    hasOwn(options, '__proto__') ? { ...consumerDefaults, ...options } : Object.assign({}, consumerDefaults, options)
  ) as ResolvedOptions;
  // An option given as undefined (`{ rpcTimeoutMs: config.timeout }` unset) takes its default, as
  // when it is left out: Node runs a timer of undefined at once.
  for (const key in consumerDefaults) {
    const k = key as keyof typeof consumerDefaults;
    if (o[k] === undefined) o[k] = consumerDefaults[k] as never;
  }
  o.sessionId = options.sessionId ?? sessionId();
  o.lateWakeupGraceMs = options.lateWakeupGraceMs ?? Math.min(o.pingIntervalMs, 5_000);
  o.url = socketUrl(o.url);
  // Checked here, not when the hello is sent: a hello the protocol refuses could never be sent.
  // (The protocol's own checks of a hello's user_id and session_id, without building a hello.)
  if (o.userId !== undefined && !isUserId(o.userId)) {
    throw new TypeError(`userId must be 1 to 128 characters (got ${(o.userId as string).length})`);
  }
  if (!isSessionId(o.sessionId)) {
    throw new TypeError(`sessionId must be 1 to 128 characters (got ${String(o.sessionId).length})`);
  }
  if (o.token !== undefined && o.getToken !== undefined) throw new TypeError('pass token or getToken, not both');
  if (o.lastCursor === null) o.lastCursor = undefined;
  // Else every hello would fail before it is sent (the protocol refuses it), reported as a refused token.
  if (o.lastCursor !== undefined && !isCursor(o.lastCursor)) {
    throw new TypeError(`lastCursor is not a cursor: ${String(o.lastCursor).slice(0, 40)}`);
  }
  // Node runs a timer of NaN, Infinity or more than MAX_TIMER_MS after 1 ms: every call would time
  // out, or every attempt end, at once. The least value is 1 where 0 would mean nothing.
  for (const [name, least] of NUMBERS) {
    const value = o[name];
    const whole = name === 'maxQueuedCalls';
    // Not timers (a bound on calls, a window compared with the time since a loss): Infinity is
    // "no bound" / "never", as it read before these checks.
    if ((whole || name === 'networkRetryWindowMs') && value === Number.POSITIVE_INFINITY) continue;
    if (typeof value !== 'number' || !(value >= least && value <= MAX_TIMER_MS) || (whole && value % 1)) {
      const what = whole ? 'a whole number' : 'a number';
      throw new TypeError(`${name} must be ${what} from ${least} to ${MAX_TIMER_MS} (got ${describe(value)})`);
    }
  }
  if (o.pingTimeoutMs <= o.pingIntervalMs) {
    throw new TypeError(`pingTimeoutMs (${o.pingTimeoutMs}) must be greater than pingIntervalMs (${o.pingIntervalMs})`);
  }
  if (o.whileDisconnected !== 'queue' && o.whileDisconnected !== 'fail') {
    throw new TypeError(`whileDisconnected must be 'queue' or 'fail' (got ${describe(o.whileDisconnected)})`);
  }
  if (typeof o.helloInUpgrade !== 'boolean') {
    throw new TypeError(`helloInUpgrade must be true or false (got ${describe(o.helloInUpgrade)})`);
  }
  if (o.maxReconnectDelayMs < o.minReconnectDelayMs) {
    throw new TypeError('maxReconnectDelayMs must be at least minReconnectDelayMs');
  }
  return o;
}

/** The longest delay a Node timer keeps (about 24.8 days). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** The numeric options and their least value. */
const NUMBERS = [
  ['pingIntervalMs', 1],
  ['pingTimeoutMs', 1],
  ['lateWakeupGraceMs', 0],
  ['minReconnectDelayMs', 0],
  ['maxReconnectDelayMs', 0],
  ['networkRetryWindowMs', 0],
  ['handshakeTimeoutMs', 1],
  ['rpcTimeoutMs', 1],
  ['maxQueuedCalls', 0],
] as const;

/** A value as a message shows it: a string in quotes ("5000" is not 5000). */
const describe = (value: unknown) => (typeof value === 'string' ? JSON.stringify(value) : String(value));

// biome-ignore lint/suspicious/noPrototypeBuiltins: Object.hasOwn is missing from the ES2020 browsers this targets.
const hasOwn = (o: object, key: string) => Object.prototype.hasOwnProperty.call(o, key);

const SCHEMES = ['ws:', 'wss:', 'http:', 'https:'];
/**
 * Refuses, at construction, a URL no WebSocket can open: otherwise each attempt
 * fails like a network outage (1006) and the client retries forever. Returns the URL the
 * socket opens: in a browser, a relative URL resolved against the page, and `http(s)` as
 * `ws(s)`, which browsers before 2024 do not do themselves (their `new WebSocket` throws).
 */
function socketUrl(url: string): string {
  if (!url) throw new TypeError('url is required');
  const base = (globalThis as { location?: { href?: unknown } }).location?.href;
  let parsed: URL | undefined;
  try {
    parsed = typeof base === 'string' ? new URL(url, base) : new URL(url);
  } catch {
    // Without a base, "127.0.0.1:8080/ws" and "/ws" do not parse at all.
  }
  const scheme = parsed?.protocol;
  if (!parsed || !SCHEMES.includes(scheme as string)) {
    const got = scheme === undefined ? 'no scheme' : `unknown scheme ${scheme}`;
    throw new TypeError(`url has ${got}: ${url} (use ws://HOST/ws or wss://HOST/ws)`);
  }
  parsed.protocol = (scheme as string).replace('http', 'ws');
  // A WebSocket URL has no fragment: `ws` and browsers before 2023 throw on one.
  parsed.hash = '';
  return parsed.href;
}
