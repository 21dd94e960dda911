import type { AddressInfo } from 'node:net';
import {
  type ClientFrame,
  formatCursor,
  parseCursor,
  parseServerFrame,
  type ServerFrame,
  serializeFrame,
} from '@livebus/protocol';
import { waitFor } from '@livebus/test-support';
import TransportStream from 'winston-transport';
import { WebSocket } from 'ws';
import type { GatewayPorts } from '../src/compose';
import { defaultConfig, type GatewayConfig } from '../src/config';
import type { DetachDecision } from '../src/fleet/detach/detach-decision';
import { MemoryDetachDecision } from '../src/fleet/detach/memory-detach-decision';
import { MemoryPresence } from '../src/fleet/presence/memory-presence';
import { MemoryRegistryStore } from '../src/fleet/registry/memory-registry-store';
import type { RegistryStore } from '../src/fleet/registry/registry-store';
import { createGateway, type Gateway } from '../src/gateway';
import type { GatewayHookEvents, GatewayHooks } from '../src/hooks';
import { createLogger, type Logger } from '../src/logger';

/** A captured log line. */
export type LogEntry = Record<string, unknown> & { event: string };

/** Collects the gateway's log lines in memory. */
export class LogCapture extends TransportStream {
  readonly entries: LogEntry[] = [];
  override log(info: LogEntry, next: () => void): void {
    this.entries.push(info);
    next();
  }
  of(event: string, uid?: string): LogEntry[] {
    return this.entries.filter((e) => e.event === event && (uid === undefined || e.uid === uid));
  }
  waitFor(event: string, uid?: string, timeoutMs = 5_000): Promise<LogEntry> {
    return waitFor(() => this.of(event, uid)[0], `log ${event}${uid ? ` for ${uid}` : ''}`, timeoutMs);
  }
}

/** A recorded lifecycle event: its name and its payload. */
export type HookEntry<K extends keyof GatewayHookEvents = keyof GatewayHookEvents> = {
  [N in K]: { name: N } & GatewayHookEvents[N];
}[K];

/** The lifecycle moments {@link HookCapture} records. */
export const RECORDED_HOOKS = [
  'detach.delay_start',
  'detach.cancelled',
  'detach.executing',
  'detach.complete',
  'registry.cleanup',
  'lease.acquired',
  'lease.lost',
  'lease.released',
  'lease.holder_dead',
  'lease.renewed',
  'lease.standby',
  'listener.attached',
  'listener.detached',
  'session.open',
  'session.close',
  'session.replay',
  'session.auth_failed',
  'firestore.warm_up',
] as const satisfies readonly (keyof GatewayHookEvents)[];

/**
 * Records a gateway's lifecycle events from the moment it is built, in order: a test
 * asserts what happened (and waits for it) on them, never on log text.
 */
export class HookCapture {
  readonly entries: HookEntry[] = [];
  constructor(hooks: GatewayHooks, names: readonly (keyof GatewayHookEvents)[] = RECORDED_HOOKS) {
    for (const name of names) {
      hooks.on(name, (event) => this.entries.push({ name, ...event } as HookEntry));
    }
  }
  /** The recorded `name` events (of `uid`, and that `match` accepts). */
  of<K extends keyof GatewayHookEvents>(
    name: K,
    uid?: string,
    match: (e: HookEntry<K>) => boolean = () => true,
  ): HookEntry<K>[] {
    const named = this.entries.filter((e) => e.name === name) as unknown as HookEntry<K>[];
    return named.filter((e) => (uid === undefined || (e as { uid?: string }).uid === uid) && match(e));
  }
  /** The first such event, once recorded. */
  waitFor<K extends keyof GatewayHookEvents>(
    name: K,
    uid?: string,
    match: (e: HookEntry<K>) => boolean = () => true,
    timeoutMs = 5_000,
  ): Promise<HookEntry<K>> {
    return waitFor(() => this.of(name, uid, match)[0], `hook ${String(name)}${uid ? ` for ${uid}` : ''}`, timeoutMs);
  }
}

/** A gateway on a free port with its logs captured. */
export interface TestGateway {
  gw: Gateway;
  url: string;
  http: string;
  port: number;
  logs: LogCapture;
  /** Its lifecycle events since it was built. */
  hooks: HookCapture;
  close(): Promise<void>;
}

/** Starts a gateway on 127.0.0.1:0 with short delays suitable for tests. */
export async function startGateway(
  overrides: Partial<GatewayConfig> = {},
  ports: GatewayPorts | ((config: GatewayConfig, logger: Logger) => GatewayPorts | Promise<GatewayPorts>) = {},
): Promise<TestGateway> {
  const config = defaultConfig({
    port: 0,
    host: '127.0.0.1',
    instanceId: 'gw-test',
    detachDelayMs: 100,
    shutdownGraceMs: 2_000,
    logLevel: 'debug',
    // Raw test clients do not retry a refused upgrade, and a loaded test machine runs late:
    // admission control is off unless a test turns it on (test/admission.int.test.ts does).
    admissionMaxHandshakes: 0,
    admissionMaxLagMs: 0,
    ...overrides,
  });
  const logs = new LogCapture();
  const logger = createLogger({ level: 'debug', format: 'json', instanceId: config.instanceId, transport: logs });
  const gw = createGateway(config, { logger, ...(typeof ports === 'function' ? await ports(config, logger) : ports) });
  const hooks = new HookCapture(gw.hooks);
  const address: AddressInfo = await gw.listen();
  return {
    gw,
    logs,
    hooks,
    port: address.port,
    url: `ws://127.0.0.1:${address.port}/ws`,
    http: `http://127.0.0.1:${address.port}`,
    close: () => gw.shutdown('test'),
  };
}

/** A raw protocol client for tests: every frame received, in order, and helpers to wait for them. */
export class TestClient {
  readonly ws: WebSocket;
  readonly frames: ServerFrame[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  readonly opened: Promise<void>;
  #nextId = 1;

  /** `protocols`: the subprotocols offered (a hello carried in the upgrade, upgrade-hello.int.test.ts). */
  constructor(url: string, headers: Record<string, string> = {}, protocols: string[] = []) {
    this.ws = new WebSocket(url, protocols, { headers });
    this.ws.on('message', (data) => {
      const parsed = parseServerFrame(data);
      if (!parsed.ok) throw new Error(`gateway sent an invalid frame: ${parsed.error.message}`);
      this.frames.push(parsed.value);
    });
    this.ws.on('error', () => {});
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
      // A connection reset or refused before the upgrade completed (after an open, no effect).
      this.ws.once('close', (code) => reject(new Error(`closed (${code}) before the upgrade completed`)));
    });
    // Awaited by whoever needs it; a client whose upgrade fails and is never awaited is no unhandled rejection.
    this.opened.catch(() => {});
    this.closed = new Promise((resolve) =>
      this.ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })),
    );
  }

  send(frame: ClientFrame): void {
    this.ws.send(serializeFrame(frame));
  }

  sendRaw(data: string | Buffer, binary = false): void {
    this.ws.send(data, { binary });
  }

  /** Waits for the first frame matching `pred` that arrived at or after index `from`. */
  async next<T extends ServerFrame['type']>(
    type: T,
    pred: (f: Extract<ServerFrame, { type: T }>) => boolean = () => true,
    timeoutMs = 5_000,
  ): Promise<Extract<ServerFrame, { type: T }>> {
    const found = () =>
      this.frames.find(
        (f): f is Extract<ServerFrame, { type: T }> => f.type === type && pred(f as Extract<ServerFrame, { type: T }>),
      );
    const waited = waitFor(found, `a ${type} frame`, timeoutMs);
    // A socket that closed will bring no more frames: say so now rather than at the timeout.
    const closed = this.closed.then(({ code, reason }) => {
      const frame = found();
      if (frame) return frame;
      throw new Error(`closed (${code}${reason ? ` ${reason}` : ''}) before a ${type} frame`);
    });
    waited.catch(() => {});
    closed.catch(() => {});
    return Promise.race([waited, closed]);
  }

  events(): Extract<ServerFrame, { type: 'event' }>[] {
    return this.frames.filter((f): f is Extract<ServerFrame, { type: 'event' }> => f.type === 'event');
  }

  /** Sends hello and waits for welcome. */
  async hello(fields: Omit<Extract<ClientFrame, { type: 'hello' }>, 'type' | 'v'> = {}) {
    await this.opened;
    this.send({ type: 'hello', v: 1, ...fields });
    return this.next('welcome');
  }

  /** Calls a method and waits for its result or error frame. */
  async call(method: string, args: unknown[]) {
    const id = this.#nextId++;
    this.send({ type: 'rpc', id, method, args: args as never });
    return waitFor(
      () => this.frames.find((f) => (f.type === 'rpc_result' || f.type === 'rpc_error') && f.id === id),
      `answer to ${method}`,
    ) as Promise<Extract<ServerFrame, { type: 'rpc_result' | 'rpc_error' }>>;
  }

  close(code = 1000): Promise<{ code: number; reason: string }> {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close(code);
    return this.closed;
  }
}

/** Opens a client and completes the handshake as `uid` (AUTH_MODE=none). */
export async function connectAs(url: string, uid: string, extra: { session_id?: string; last_cursor?: string } = {}) {
  const client = new TestClient(url);
  try {
    const welcome = await client.hello({ user_id: uid, ...extra });
    return { client, welcome };
  } catch (error) {
    // Not left open for a welcome that may still come: the caller retries with a new client.
    client.ws.terminate();
    throw error;
  }
}

/** The cursor `n` events after `cursor` in the same epoch. */
export function shift(cursor: string, n: number): string {
  const at = parseCursor(cursor);
  if (!at) throw new Error(`not a cursor: ${cursor}`);
  return formatCursor(at.epoch, at.offset + n);
}

/** Convenience for HTTP calls. */
export async function httpJson(url: string, init: RequestInit & { token?: string } = {}) {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (init.token) headers.authorization = `Bearer ${init.token}`;
  const res = await fetch(url, { ...init, headers: { ...headers, ...(init.headers as Record<string, string>) } });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // Prometheus text and the like
  }
  return { status: res.status, body: body as Record<string, unknown> & { [k: string]: unknown } };
}

/**
 * A real in-memory registry with some operations replaced, for fault injection
 * (slow, failing, corrupt), and the embedded presence and detach decision that go
 * with it (`deps`, to pass to {@link startGateway}); `decision` replaces operations
 * of the decision, given the real one. Returns the underlying store too, to inspect it.
 */
export function registryWith(
  overrides: Partial<Omit<RegistryStore, 'sharedAcrossInstances'>>,
  decision: (real: DetachDecision) => Partial<DetachDecision> = () => ({}),
): {
  store: MemoryRegistryStore;
  registry: RegistryStore;
  deps: Pick<GatewayPorts, 'registry' | 'presence' | 'detachDecision'>;
} {
  const store = new MemoryRegistryStore();
  const registry: RegistryStore = {
    sharedAcrossInstances: false,
    registerSession: (u, s, max) => store.registerSession(u, s, max),
    unregisterSession: (u, s) => store.unregisterSession(u, s),
    getSessions: (u) => store.getSessions(u),
    getUnified: (u) => store.getUnified(u),
    putUnified: (u, d, ttl) => store.putUnified(u, d, ttl),
    touchUnified: (u, ttl) => store.touchUnified(u, ttl),
    ping: () => store.ping(),
    close: () => store.close(),
    ...overrides,
  };
  const presence = new MemoryPresence();
  const real = new MemoryDetachDecision(presence, store);
  const detachDecision: DetachDecision = {
    claim: (u, c) => real.claim(u, c),
    cleanupIfAbsent: (u) => real.cleanupIfAbsent(u),
    ...decision(real),
  };
  return { store, registry, deps: { registry, presence, detachDecision } };
}
