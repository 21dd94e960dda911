import type { Authenticator } from '../auth/authenticator';
import type { GatewayConfig } from '../config';
import type { EventBus } from '../fleet/bus/event-bus';
import type { InstanceChannel } from '../fleet/instances/instance-channel';
import type { Presence } from '../fleet/presence/presence';
import type { RegistryStore } from '../fleet/registry/registry-store';
import type { GatewayHooks } from '../hooks';
import type { ListenersManager } from '../listeners/listeners-manager';
import type { Logger } from '../logger';
import type { DisconnectTracker } from '../metrics/disconnect-tracker';
import type { Dispatch } from '../rpc/dispatcher';
import type { Connection } from './session';
import type { SessionHub } from './session-hub';
import type { TokenLifetime } from './token-lifetime';

/** What the connection handler works with. */
export interface ConnectionHandlerDeps {
  config: GatewayConfig;
  logger: Logger;
  /** Where the session moments go (open, close, replay, token refresh and expiry). */
  hooks: GatewayHooks;
  auth: Authenticator;
  bus: EventBus;
  hub: SessionHub;
  listeners: ListenersManager;
  dispatch: Dispatch;
  tracker: DisconnectTracker;
  /** The fleet's directory of sessions: session limits and replacement hold across instances. */
  presence: Presence;
  /** Orders to other instances: close a session that reconnected here. */
  channel: InstanceChannel;
  /** The sessions' registry entries, read again when another instance changed one of ours. */
  registry: Pick<RegistryStore, 'getSessions'>;
  isDraining: () => boolean;
  /**
   * Where a hello waits for its slice of the event loop after its presence write and after its
   * reads, before its welcome (transport/handshake-slices.ts): a storm's replies, read in one
   * turn, do not all go on in that turn. Absent: a hello goes on at once.
   */
  slices?: { next(): Promise<void> };
}

/**
 * Admission control's count of one connection in its handshake (transport/admission.ts
 * hands one per admitted upgrade; the core only reports the hello and the end).
 */
export interface HandshakeCount {
  /** The hello arrived: it counts until {@link done}. */
  helloReceived(): void;
  /** The welcome was sent, or the hello failed. Idempotent. */
  done(): void;
}

/**
 * A hello of this instance between its presence write and its session's opening. A session of
 * the same id closing meanwhile (the same tab's older socket), or an older hello of the id giving
 * up, must not remove the entry: the removal would reach Redis after the write and remove the
 * new one. It leaves the entry to the hello and waits (presence-entries.ts, leaveEntry): the
 * hello opens its session (the entry is the new session's), or takes the entry back, and then
 * calls `predecessorClosed`.
 */
export interface Admitting {
  predecessorClosed?: () => void;
  /**
   * The hello's entry is written (`maybe`: its write failed, perhaps after Redis ran it): if it
   * gives up, it takes the entry back.
   */
  written?: boolean | 'maybe';
  /**
   * Another instance changed the session's registry entry meanwhile: the entry the presence
   * write read may be older, and is read again once the session is open.
   */
  registrationChanged?: boolean;
}

/** What the core's units share: the deps and the handler's own state. */
export interface CoreContext extends ConnectionHandlerDeps {
  /** Every connection from accept to close. */
  readonly connections: Set<Connection>;
  /** Admission's count of each connection still in its handshake. */
  readonly counts: WeakMap<Connection, HandshakeCount>;
  /** Hellos between their presence write and their session's opening, by `admittingKey(uid, sessionId)`. */
  readonly admitting: Map<string, Admitting>;
  /** Keeps each open session no longer than its token. */
  readonly lifetime: TokenLifetime;
  /** Hellos waiting for their slice of the event loop (`slices`), not for Redis. */
  readonly waitingTurn: WeakSet<Connection>;
}
