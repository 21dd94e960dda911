import type { ServerFrame } from '@livebus/protocol';
import type { Authenticator } from '../auth/authenticator';
import { NoneAuthenticator } from '../auth/none-authenticator';
import { resolvePorts } from '../compose';
import { defaultConfig, type GatewayConfig } from '../config';
import type { EventBus } from '../fleet/bus/event-bus';
import { ListenersManager } from '../listeners/listeners-manager';
import type { Logger } from '../logger';
import { DisconnectTracker } from '../metrics/disconnect-tracker';
import { countHooks, createMetrics } from '../metrics/prometheus';
import { createDispatcher, type Dispatch } from '../rpc/dispatcher';
import { createHandlers } from '../rpc/handlers';
import { createConnectionHandler } from './connection-handler';
import { SessionHub } from './session-hub';
import type { CoreSocket, SocketEvents, SocketRequest } from './socket';

/** A frame the core wrote (a {@link ServerFrame}), as a test reads it: fields by name. */
export type SentFrame = { type: ServerFrame['type'] } & Record<string, unknown>;

/**
 * A socket without a network, for the core's unit tests: records what the core writes,
 * and lets the test play the peer (send a message, a pong, close). Closing behaves as a
 * peer that answers the close handshake at once: the core hears the close a microtask later.
 */
export class FakeSocket implements CoreSocket {
  isOpen = true;
  bufferedAmount = 0;
  pings = 0;
  readonly sent: SentFrame[] = [];
  /** How the connection ended, once it did: `terminated` when without a close handshake. */
  ended: { code: number; reason: string; terminated: boolean } | undefined;
  /** Resolves with {@link ended} once the core has heard the close. */
  readonly closed: Promise<{ code: number; reason: string; terminated: boolean }>;
  #target: unknown;
  #events: SocketEvents<unknown> | undefined;
  #resolveClosed!: (end: { code: number; reason: string; terminated: boolean }) => void;
  #waiters: { type: string; after: number; resolve: (frame: SentFrame) => void }[] = [];

  constructor() {
    this.closed = new Promise((resolve) => {
      this.#resolveClosed = resolve;
    });
  }

  send(text: string): void {
    const frame = JSON.parse(text) as SentFrame;
    this.sent.push(frame);
    const index = this.sent.length - 1;
    for (const w of [...this.#waiters]) {
      if (w.type === frame.type && index >= w.after) {
        this.#waiters.splice(this.#waiters.indexOf(w), 1);
        w.resolve(frame);
      }
    }
  }

  close(code: number, reason: string): void {
    this.#end(code, reason, false);
  }

  terminate(): void {
    this.#end(1006, '', true);
  }

  ping(): void {
    this.pings++;
  }

  listen<T>(target: T, events: SocketEvents<T>): void {
    this.#target = target;
    this.#events = events as SocketEvents<unknown>;
  }

  /** The peer sends a frame (an object is sent as its JSON, a string as is). */
  receive(frame: object | string, isBinary = false): void {
    this.#events?.message(
      this.#target,
      Buffer.from(typeof frame === 'string' ? frame : JSON.stringify(frame)),
      isBinary,
    );
  }

  /** The peer answers a protocol ping. */
  pong(): void {
    this.#events?.alive(this.#target);
  }

  /** The peer closes (its close frame arrives). */
  peerClose(code = 1000, reason = ''): void {
    this.#end(code, reason, false);
  }

  /** The next frame of `type` the core writes from now on (or the first already written, with `seen`). */
  next(type: ServerFrame['type'], { seen = false }: { seen?: boolean } = {}): Promise<SentFrame> {
    const after = seen ? 0 : this.sent.length;
    const already = this.sent.slice(after).find((f) => f.type === type);
    if (already) return Promise.resolve(already);
    return new Promise((resolve) => this.#waiters.push({ type, after, resolve }));
  }

  /** Frames written so far of `type`. */
  of(type: string): SentFrame[] {
    return this.sent.filter((f) => f.type === type);
  }

  #end(code: number, reason: string, terminated: boolean): void {
    if (!this.isOpen) return;
    this.isOpen = false;
    this.ended = { code, reason, terminated };
    const end = this.ended;
    queueMicrotask(() => {
      this.#events?.close(this.#target, code, reason);
      this.#resolveClosed(end);
    });
  }
}

/** A logger that writes nothing: the core's tests observe hooks, frames and close codes. */
export const quietLogger: Logger = { error() {}, warn() {}, info() {}, debug() {} };

/** Options of {@link startCore}. */
export interface CoreHarnessOptions {
  /** @default AUTH_MODE=none */
  auth?: Authenticator;
  bus?: EventBus;
  isDraining?: () => boolean;
  /** Where welcomes wait for their slice (ConnectionHandlerDeps.slices). @default none: at once */
  slices?: { next(): Promise<void> };
  /** @default {@link quietLogger} */
  logger?: Logger;
  /** Replaces the RPC dispatcher (the memory ports' handlers by default). */
  dispatch?: Dispatch;
}

/**
 * A connection handler over the memory implementations of its ports (compose.ts's
 * embedded defaults: event bus, presence, registry, detach decision, instance channel,
 * lease; listeners without sources), for unit tests.
 */
export function startCore(overrides: Partial<GatewayConfig> = {}, options: CoreHarnessOptions = {}) {
  const config = defaultConfig({ instanceId: 'gw-test', detachDelayMs: 0, ...overrides });
  const logger = options.logger ?? quietLogger;
  // The composition root's memory defaults: every port in its embedded in-memory form.
  const ports = resolvePorts(config, {
    logger,
    auth: options.auth ?? new NoneAuthenticator(),
    ...(options.bus ? { bus: options.bus } : {}),
  });
  const { hooks, bus, presence, registry, channel, detachDecision } = ports;
  const hub = new SessionHub({ bus, logger, maxBufferedBytes: config.maxBufferedBytes });
  const listeners = new ListenersManager({
    sources: [],
    detachDelayMs: config.detachDelayMs,
    logger,
    cleanupRegistry: (uid) => detachDecision.cleanupIfAbsent(uid),
    claimCleanup: (uid) => detachDecision.claim(uid, config.instanceId),
    removeLeftEntries: (uid) => handler.removeLeftEntries(uid),
    emit: (uid, event) => bus.publish(uid, event),
    lease: ports.lease,
    workflowWatches: ports.workflowWatches,
  });
  const zero = () => 0;
  const metrics = createMetrics({
    connections: zero,
    sessions: zero,
    users: zero,
    listeners: zero,
    workflowListeners: zero,
    pendingDetaches: zero,
    bus: () => ({ retainedBytes: 0 }),
    eventsDelivered: zero,
  });
  countHooks(hooks, metrics);
  const dispatch = createDispatcher({
    timeoutMs: config.rpcTimeoutMs,
    handlers: createHandlers({
      registry,
      listeners,
      logger,
      instanceId: config.instanceId,
      unifiedRegistryEnabled: false,
      unifiedRegistryTtlS: config.unifiedRegistryTtlS,
      registryDebug: false,
      hasLiveSession: (uid) => hub.has(uid),
      isOnline: async (uid) => hub.has(uid),
      publish: (uid, event) => bus.publish(uid, event),
    }),
  });
  const tracker = new DisconnectTracker({ maxUsers: 100 });
  const handler = createConnectionHandler({
    config,
    logger,
    hooks,
    auth: ports.auth,
    bus,
    hub,
    listeners,
    dispatch: options.dispatch ?? dispatch,
    tracker,
    presence,
    channel,
    registry,
    isDraining: options.isDraining ?? (() => false),
    ...(options.slices ? { slices: options.slices } : {}),
  });

  /** A new connection, as the transport would hand it over. */
  function connect(request: Partial<SocketRequest> = {}): FakeSocket {
    const socket = new FakeSocket();
    handler.open(socket, { headers: request.headers ?? {}, remoteAddress: request.remoteAddress ?? '127.0.0.1' });
    return socket;
  }

  /** A connection that said hello as `uid` (AUTH_MODE=none); resolves with its welcome. */
  async function open(uid: string, hello: Record<string, unknown> = {}) {
    const socket = connect();
    const welcome = socket.next('welcome');
    socket.receive({ type: 'hello', v: 1, user_id: uid, ...hello });
    return { socket, welcome: await welcome };
  }

  /** Ends every connection and waits for the bookkeeping. */
  async function stop(): Promise<void> {
    handler.terminateAll();
    await new Promise((resolve) => setImmediate(resolve));
    await handler.settled();
    await listeners.flush();
    await bus.close();
  }

  return { config, hooks, bus, presence, registry, hub, listeners, tracker, metrics, handler, connect, open, stop };
}
