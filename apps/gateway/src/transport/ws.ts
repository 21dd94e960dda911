import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { HELLO_PROTOCOL_PREFIX, UPGRADE_HELLO_PROTOCOL } from '@livebus/protocol';
import { type WebSocket, WebSocketServer } from 'ws';
import type { GatewayConfig } from '../config';
import type { ConnectionHandler } from '../core/connection-handler';
import type { SocketRequest } from '../core/socket';
import type { Logger } from '../logger';
import { type Admission, type HandshakeTicket, refuseUpgrade } from './admission';
import { fromWs, GatewayWebSocket } from './gateway-socket';
import type { HandshakeSlices } from './handshake-slices';
import { enforceHeaderDeadline } from './http/header-deadline';
import { isOriginAllowed } from './origin-policy';

/** Admission tickets of upgrades the core does not have yet (see the 'upgrade' handler). */
const tickets = new WeakMap<Duplex, HandshakeTicket>();

/** Shared by every upgrading socket: a closure per socket would stay with it for its life. */
function endTicket(this: Duplex): void {
  tickets.get(this)?.done();
  tickets.delete(this);
  this.off('close', endTicket);
}

/**
 * The request as the core sees it. The peer's address only if asked for: reading it makes the
 * socket keep it (an object and two strings, ~100 bytes per connection, for the socket's life).
 * A class, not an object literal with a getter: that made a getter closure and an accessor
 * pair per upgrade.
 */
class UpgradeRequest implements SocketRequest {
  readonly #req: IncomingMessage;
  readonly hello: Buffer | undefined;

  constructor(req: IncomingMessage, hello: Buffer | undefined) {
    this.#req = req;
    this.hello = hello;
  }

  get headers(): IncomingMessage['headers'] {
    return this.#req.headers;
  }

  get remoteAddress(): string | undefined {
    return this.#req.socket.remoteAddress;
  }
}

/**
 * The subprotocol `ws` answers with (`handleProtocols`): `livebus.hello` when the client carried
 * its hello in the upgrade (upgrade-hello.ts in the protocol package), else the first one offered,
 * as `ws` does without this option (so `livebus` for a client that sends its hello as a frame).
 */
export function selectProtocol(offered: Set<string>): string | false {
  if (offered.has(UPGRADE_HELLO_PROTOCOL)) {
    for (const protocol of offered) if (protocol.startsWith(HELLO_PROTOCOL_PREFIX)) return UPGRADE_HELLO_PROTOCOL;
  }
  const first = offered.values().next();
  return first.done ? false : first.value;
}

/**
 * The hello frame's text a client carried in its upgrade (the base64url after `livebus.hello.` in
 * `Sec-WebSocket-Protocol`), when `ws` answered with `livebus.hello`; checked as a hello frame is.
 */
export function helloOfUpgrade(protocol: string, header: string | undefined): Buffer | undefined {
  if (protocol !== UPGRADE_HELLO_PROTOCOL || header === undefined) return undefined;
  // The first value with the prefix, as selectProtocol found it in ws's parse of the same header.
  for (const value of header.split(',')) {
    const trimmed = value.trim();
    if (trimmed.startsWith(HELLO_PROTOCOL_PREFIX))
      return Buffer.from(trimmed.slice(HELLO_PROTOCOL_PREFIX.length), 'base64url');
  }
  return undefined;
}

/** Whether a request's URL is /ws, with or without a query (no array and string per upgrade, as split made). */
export const isWsPath = (url: string | undefined): boolean =>
  url !== undefined && (url === '/ws' || url.startsWith('/ws?'));

/** What {@link attachWsTransport} needs. */
export interface WsTransportOptions {
  config: Pick<GatewayConfig, 'maxPayloadBytes' | 'allowedOrigins' | 'handshakeTimeoutMs'>;
  logger: Logger;
  /** Admission control: counts handshakes in flight and refuses upgrades (503) during a storm. */
  admission: Pick<Admission, 'check'>;
  /** Where accepted sockets go: the session core. */
  core: Pick<ConnectionHandler, 'open'>;
  isDraining: () => boolean;
  /** Where upgrades wait for their slice of the event loop, shared with the hellos' continuations. */
  slices: Pick<HandshakeSlices, 'run' | 'accepted'>;
}

/**
 * The WebSocket transport: the HTTP server's upgrades, answered with `ws` and handed
 * to the core as {@link CoreSocket}s. What is refused before the WebSocket opens,
 * in order: admission control (503 + Retry-After, a few bytes before any WebSocket
 * work), a path other than /ws (404), a draining instance (503), an Origin not in
 * ALLOWED_ORIGINS (403). A peer that never completes its request or upgrade is dropped
 * within the handshake timeout (header-deadline.ts).
 */
export function attachWsTransport(server: Server, options: WsTransportOptions): void {
  const { config, logger, admission, core } = options;
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: config.maxPayloadBytes,
    perMessageDeflate: false,
    clientTracking: false,
    // Events reach the core without a listener per connection (gateway-socket.ts).
    WebSocket: GatewayWebSocket,
    handleProtocols: selectProtocol,
  });

  /** Why an upgrade is refused before the WebSocket opens, as an HTTP status line; undefined to accept. */
  function upgradeRefusal(req: IncomingMessage): string | undefined {
    if (!isWsPath(req.url)) return '404 Not Found';
    if (options.isDraining()) return '503 Service Unavailable';
    if (!isOriginAllowed(req.headers.origin, config.allowedOrigins)) {
      logger.warn('ws_origin_refused', { origin: String(req.headers.origin).slice(0, 200) });
      return '403 Forbidden';
    }
    return undefined;
  }

  /**
   * The WebSocket is open: the core takes it, with the admission ticket the upgrade was given
   * (its count runs until the welcome or a failure). One function for every upgrade, not a
   * closure each: `ws` calls it at once, with the request, and only while the socket is
   * open (a socket that closed before lost its ticket with its 'close', and is destroyed).
   */
  function upgraded(ws: WebSocket, req: IncomingMessage): void {
    const socket = req.socket;
    const ticket = tickets.get(socket);
    // The socket lives for hours: it keeps no listener or map entry of the handshake.
    socket.off('close', endTicket);
    tickets.delete(socket);
    const hello = helloOfUpgrade(ws.protocol, req.headers['sec-websocket-protocol']);
    const gatewaySocket = fromWs(ws as GatewayWebSocket);
    // Corked in handleUpgrade: the 101 waits for the welcome (or the hello's failure), one write.
    if (hello) gatewaySocket.held = true;
    else if (socket.writableCorked > 0) socket.uncork();
    core.open(gatewaySocket, new UpgradeRequest(req, hello), ticket);
  }

  function handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    try {
      const refusal = upgradeRefusal(req);
      if (refusal) {
        socket.end(`HTTP/1.1 ${refusal}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
        return;
      }
      // A hello in the upgrade: the 101 is held back to leave with the welcome (upgraded()).
      if (req.headers['sec-websocket-protocol']?.includes(HELLO_PROTOCOL_PREFIX)) socket.cork();
      wss.handleUpgrade(req, socket, head, upgraded);
    } catch (error) {
      logger.error('ws_handler_error', { where: 'upgrade', error: String(error) });
      socket.destroy();
    }
  }

  // Upgrades run in slices of a few ms per turn of the event loop, and a turn that accepted a
  // connection is given to accepting the next (handshake-slices.ts): in a reconnect storm,
  // a health probe on the same port is accepted and read between two slices.
  const { slices } = options;
  server.on('connection', () => slices.accepted());
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const decision = admission.check();
    if (!decision.admit) {
      refuseUpgrade(socket, decision.retryAfterS);
      return;
    }
    // Whatever ends the socket before the core has it (a refused or failed handshake, a
    // close) ends its count too; from core.open on, the core ends it (welcome or close).
    tickets.set(socket, decision.ticket);
    socket.on('close', endTicket);
    slices.run(() => {
      // The peer gave up while its upgrade waited (its 'close' ended the ticket).
      if (!socket.destroyed) handleUpgrade(req, socket, head);
    });
  });
  // A peer that never completes its request or upgrade is dropped within the handshake timeout.
  enforceHeaderDeadline(server, config.handshakeTimeoutMs);
}
