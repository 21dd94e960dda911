import { CloseCode, type Cursor } from '@livebus/protocol';
import type { EventBus, ListenOptions, LiveEvent, TargetListener, Unsubscribe } from '../fleet/bus/event-bus';
import type { Logger } from '../logger';
import type { DeliveryLatency } from '../metrics/delivery-latency';
import { handlerFailed } from './guard';
import type { Connection, Session } from './session';
import { closeSlowConsumer } from './slow-consumer';

/** Options of {@link SessionHub}. */
/**
 * Over how long the sessions of a stream found made anew are told to reconnect (a uniform
 * hint in [0, this)): when Redis comes back empty, that is nearly every session of the fleet.
 */
export const STREAM_LOST_SPREAD_MS = 5_000;

export interface SessionHubOptions {
  bus: EventBus;
  logger: Logger;
  /** A socket with more unsent bytes than this is closed as a slow consumer. */
  maxBufferedBytes: number;
  /** Where the origin-to-socket latency of live events is recorded; unset: not measured. */
  latency?: DeliveryLatency;
  /** Draws the reconnect hints of {@link STREAM_LOST_SPREAD_MS} (in [0, 1)); for tests. @default Math.random */
  random?: () => number;
}

interface UserSessions {
  /**
   * The user's sessions: most users have one, held as is; a Map by session id
   * from the second on (a Map costs a few hundred bytes, times every user).
   * Undefined only while the record is reserved (see {@link SessionHub.reserve}).
   */
  sessions: Session | Map<string, Session> | undefined;
  /**
   * Settles once the bus subscription is live; rejects if it could not be made. Undefined
   * once live (a settled promise kept for the user's life cost ~50 bytes).
   */
  subscribed: Promise<unknown> | undefined;
  /**
   * Only with a bus without {@link EventBus.listen}: what its subscribe resolved with. With
   * `listen` the hub's one shared listener and this record are the subscription.
   */
  unsubscribe: Unsubscribe | undefined;
}

function find(user: UserSessions, sessionId: string): Session | undefined {
  const s = user.sessions;
  return s instanceof Map ? s.get(sessionId) : s?.id === sessionId ? s : undefined;
}

function sizeOf(user: UserSessions): number {
  const s = user.sessions;
  return s instanceof Map ? s.size : s === undefined ? 0 : 1;
}

/** A live event kept beyond the current tick: its text, without the bytes (a view of the bus's read buffer). */
function heldCopy(event: LiveEvent): LiveEvent {
  return { cursor: event.cursor, epoch: event.epoch, offset: event.offset, text: event.text };
}

/** What {@link SessionHub.add} returns for a user whose subscription is live already. */
const SETTLED: Promise<void> = Promise.resolve();
const ignore = (): void => {};

/**
 * The live sessions of this instance, grouped by user, and the fan-out of
 * each user's event stream to them. A user is subscribed to the bus while at
 * least one of their sessions is open, or while a hello of theirs holds a
 * reservation ({@link SessionHub.reserve}).
 */
export class SessionHub {
  readonly #users = new Map<string, UserSessions>();
  /**
   * Users whose subscription a hello started before their session is added (see
   * {@link reserve}), with no session yet: not counted, not seen by {@link has}.
   */
  readonly #reserved = new Map<string, UserSessions>();
  /** Per user: the hellos between {@link reserve} and {@link release}. Empty between hellos. */
  readonly #holds = new Map<string, number>();
  readonly #o: SessionHubOptions;
  #count = 0;
  #delivered = 0;
  #received = 0;
  /** The bus listener of every user: one function, the user's record as its target. */
  readonly #onEvent: TargetListener<UserSessions> = (event, user) => this.#fanOut(user, event);

  constructor(options: SessionHubOptions) {
    this.#o = options;
    options.bus.onStreamLost?.((uid, epoch) => this.#streamLost(uid, epoch));
  }

  /** Number of open sessions. */
  get sessionCount(): number {
    return this.#count;
  }

  /** Event frames written to sessions since start (read by the metrics at scrape time, not counted per write there). */
  get deliveredCount(): number {
    return this.#delivered;
  }

  /** Live events the bus handed to this instance's users since start (one per event, however many sessions). */
  get receivedCount(): number {
    return this.#received;
  }

  /** Number of users with at least one open session. */
  get userCount(): number {
    return this.#users.size;
  }

  has(userId: string): boolean {
    return this.#users.has(userId);
  }

  /** The user's session with this id, if open. */
  get(userId: string, sessionId: string): Session | undefined {
    const user = this.#users.get(userId);
    return user && find(user, sessionId);
  }

  /** Number of open sessions of the user. */
  countOf(userId: string): number {
    const user = this.#users.get(userId);
    return user ? sizeOf(user) : 0;
  }

  /** The user's open sessions on this instance. */
  sessionsOf(userId: string): Session[] {
    const s = this.#users.get(userId)?.sessions;
    return s === undefined ? [] : s instanceof Map ? [...s.values()] : [s];
  }

  userIds(): IterableIterator<string> {
    return this.#users.keys();
  }

  /** Each user with the ids of their open sessions: what the fleet heartbeat keeps in presence. */
  *sessionIdsByUser(): Generator<[userId: string, sessionIds: string[]]> {
    for (const [uid, user] of this.#users) {
      const s = user.sessions;
      yield [uid, s instanceof Map ? [...s.keys()] : s === undefined ? [] : [s.id]];
    }
  }

  /**
   * Adds a session (replacing one with the same id); subscribes the user on their
   * first, or takes over the subscription a hello's reservation started. Resolves
   * once the user's subscription is live, so that a replay read afterwards cannot
   * miss an event published in between. Rejects (and removes the session) when the
   * bus cannot subscribe.
   */
  add(session: Session): Promise<void> {
    let user: UserSessions;
    try {
      user = this.#place(session);
    } catch (error) {
      return Promise.reject(error);
    }
    // Not an async function: its promise and suspended frame per hello. Settles on the same
    // turn as `await user.subscribed` did.
    const subscribed = user.subscribed;
    if (!subscribed) return SETTLED;
    return subscribed.then(ignore, (error: unknown) => {
      this.remove(session);
      throw error;
    });
  }

  /** Puts a session in its user's record (made, or taken from a reservation, on the user's first). */
  #place(session: Session): UserSessions {
    const uid = session.uid;
    let user = this.#users.get(uid);
    if (!user) {
      // A hello of this user reserved it: its subscription is under way, or live already.
      const u = this.#reserved.get(uid) ?? this.#subscribe(uid);
      this.#reserved.delete(uid);
      u.sessions = session;
      this.#count++;
      this.#users.set(uid, u);
      user = u;
    } else if (user.sessions instanceof Map) {
      if (!user.sessions.has(session.id)) this.#count++;
      user.sessions.set(session.id, session);
    } else if (user.sessions === undefined || user.sessions.id === session.id) {
      // (Never undefined here: a record with no session is not in #users.)
      user.sessions = session;
    } else {
      user.sessions = new Map([
        [user.sessions.id, user.sessions],
        [session.id, session],
      ]);
      this.#count++;
    }
    return user;
  }

  /** A new user record, its bus subscription started (it has no session yet). */
  #subscribe(uid: string, readAfter?: Cursor): UserSessions {
    const u: UserSessions = { sessions: undefined, subscribed: undefined, unsubscribe: undefined };
    // The frame's text goes to every session as is: validated at publish, serialised once.
    const bus = this.#o.bus;
    const subscribed: Promise<unknown> = bus.listen
      ? bus.listen(uid, this.#onEvent, u, readAfter === undefined ? undefined : { readAfter })
      : bus
          .subscribe(uid, (event) => this.#fanOut(u, event))
          .then((unsubscribe) => {
            u.unsubscribe = unsubscribe;
          });
    u.subscribed = subscribed;
    subscribed.then(
      () => {
        if (u.subscribed === subscribed) u.subscribed = undefined;
      },
      () => {
        // add() hears the failure. A reserved record that failed is not handed to a session.
        if (this.#reserved.get(uid) === u) this.#reserved.delete(uid);
      },
    );
    return u;
  }

  /**
   * Starts the user's bus subscription for a hello that is about to be admitted, so that
   * the subscription's round trips (SSUBSCRIBE, the stream head) run alongside the
   * presence write instead of after it. The session itself is added by {@link add}, which
   * still resolves only once the subscription is live; until then the record has no
   * session and the events it hears go nowhere (a session starts from the bus's position
   * or reads what it missed, as before). Each reserve is followed by one {@link release},
   * after the session was added or refused: a reservation no session took is undone then.
   * `resumeFrom`: the hello's cursor, a hint for the bus (see {@link ListenOptions.readAfter}).
   */
  reserve(uid: string, resumeFrom?: Cursor): void {
    this.#holds.set(uid, (this.#holds.get(uid) ?? 0) + 1);
    if (this.#users.has(uid) || this.#reserved.has(uid)) return;
    this.#reserved.set(uid, this.#subscribe(uid, resumeFrom));
  }

  /** Ends a {@link reserve}: with no hello of the user left and no session added, the subscription ends. */
  release(uid: string): void {
    const holds = (this.#holds.get(uid) ?? 0) - 1;
    if (holds > 0) {
      this.#holds.set(uid, holds);
      return;
    }
    this.#holds.delete(uid);
    const user = this.#reserved.get(uid);
    if (user === undefined) return;
    this.#reserved.delete(uid);
    this.#leave(uid, user);
  }

  #fanOut(user: UserSessions, event: LiveEvent): void {
    const s = user.sessions;
    // Reserved, no session yet: nobody to write to (a session reads what it missed).
    if (s === undefined) return;
    this.#received++;
    // Measured per frame written; the origin is read once per event. Frames held for a
    // session's replay (and replays) are not measured: their wait is the reconnect's.
    const latency = this.#o.latency?.prepareFrame(event) ? this.#o.latency : undefined;
    if (s instanceof Map) {
      for (const session of s.values()) if (this.#deliverGuarded(session, event)) latency?.record();
    } else if (this.#deliverGuarded(s, event)) latency?.record();
  }

  /**
   * {@link deliver} for a live event: a session whose write throws (a bug, or a socket in a
   * state nobody expected) is closed 1011 and logged (`ws_handler_error`, where `deliver`), and
   * the user's other sessions still get the event. The closed one's client resumes from its
   * cursor, which the event never moved.
   */
  #deliverGuarded(session: Session, event: LiveEvent): boolean {
    try {
      return this.deliver(session, event);
    } catch (error) {
      handlerFailed(this.#o.logger, session.connection, 'deliver', error);
      return false;
    }
  }

  /** Removes a session if it is still the current one for its id; returns whether it was. */
  remove(session: Session): boolean {
    const user = this.#users.get(session.uid);
    if (!user || find(user, session.id) !== session) return false;
    this.#count--;
    if (user.sessions instanceof Map) {
      user.sessions.delete(session.id);
      // Back to one: held as is again.
      if (user.sessions.size === 1) user.sessions = user.sessions.values().next().value as Session;
      return true;
    }
    const uid = session.uid;
    this.#users.delete(uid);
    user.sessions = undefined;
    if (this.#holds.has(uid) && user.subscribed === undefined) {
      // A hello of the user is being admitted: it takes the live subscription over.
      this.#reserved.set(uid, user);
      return true;
    }
    this.#leave(uid, user);
    return true;
  }

  /** Ends the bus subscription of a record no longer in the hub, once it is live. */
  #leave(uid: string, user: UserSessions): void {
    const leave = () => {
      const bus = this.#o.bus;
      const left = bus.unlisten ? bus.unlisten(uid, this.#onEvent, user) : user.unsubscribe?.();
      left?.catch((error: unknown) => this.#o.logger.warn('bus_unsubscribe_error', { uid, error: String(error) }));
    };
    if (user.subscribed) {
      user.subscribed.then(leave, () => {
        // Never subscribed: nothing to undo.
      });
    } else leave();
  }

  /**
   * Writes an event to a session, exactly once: events at or below the
   * session's position were already written (replay and live overlap), and
   * events arriving while the session's replay is prepared wait in
   * `session.pending`. Positions are compared as numbers: another epoch is a
   * new stream, whose events are all new. Returns true when the frame was written now.
   * `pastHoles`: the replay of a session told `gap`, which holds what the bus still retains,
   * in order, holes and all: written on, not closed at a hole (the client heard `gap` already).
   */
  deliver(session: Session, event: LiveEvent, pastHoles = false): boolean {
    if (event.epoch === session.epoch && event.offset <= session.offset) return false;
    if (session.pending) {
      // Kept until the replay is written: as text, not as a view of the bus's read buffer.
      session.pending.push(event.bytes === undefined ? event : heldCopy(event));
      return false;
    }
    const conn = session.connection;
    // A closing socket takes no more frames, and what it cannot take is no hole: the
    // position stays where the client's is, and a reconnect resumes from there.
    if (!conn.socket.isOpen) return false;
    // Offsets are consecutive in a stream: a jump means events this session never got
    // (an outage longer than the retention). Writing on would hide the loss.
    if (
      !pastHoles &&
      session.epoch !== undefined &&
      event.offset !== (event.epoch === session.epoch ? session.offset + 1 : 1)
    ) {
      this.#resume(conn, session, event.cursor);
      return false;
    }
    const socket = conn.socket;
    const buffered = socket.bufferedAmount;
    if (buffered > this.#o.maxBufferedBytes) {
      closeSlowConsumer(this.#o.logger, conn);
      return false;
    }
    // Open was checked above: the frame goes to the socket as is (sendText would check again).
    // The bytes as received only to a socket with nothing queued: a frame that must wait
    // behind others is text of its own, not a view that would keep the bus's read buffer.
    const bytes = event.bytes;
    if (bytes !== undefined && buffered === 0 && socket.sendBytes) socket.sendBytes(bytes);
    else socket.send(event.text);
    session.epoch = event.epoch;
    session.offset = event.offset;
    this.#delivered++;
    return true;
  }

  /**
   * The bus found the user's stream made anew after its subscription was down: what the
   * old epoch held after a session's position may be gone, and nothing after shows it. Its
   * sessions at a position of that epoch resume and hear `gap`, as a client that
   * reconnected across the same loss does; sessions that started in the new epoch go on.
   */
  #streamLost(uid: string, epoch: string): void {
    const user = this.#users.get(uid);
    const s = user?.sessions;
    if (s === undefined) return;
    for (const session of s instanceof Map ? [...s.values()] : [s]) {
      if (session.epoch !== epoch) continue;
      try {
        // Redis restarted empty makes every session of the fleet with a recent event resume
        // within about a second: a hint spreads their reconnects, as a shutdown's does.
        const conn = session.connection;
        if (!conn.localCloseReason) {
          conn.send({
            type: 'notice',
            kind: 'reconnect',
            message: 'events may have been lost: resume',
            reconnect_after_ms: Math.floor((this.#o.random ?? Math.random)() * STREAM_LOST_SPREAD_MS),
          });
        }
        this.#resume(conn, session, undefined);
      } catch (error) {
        // The others of the user must still hear it.
        this.#o.logger.error('ws_handler_error', { where: 'stream_lost', uid, error: String(error) });
      }
    }
  }

  /**
   * Closes a session that missed events, or may have (1012). The client reconnects and
   * resumes from its cursor, and the gateway answers `gap` there: the loss reaches the app
   * as the client's `gap` event, the same as after a long time offline. `next`: the event
   * that showed the jump.
   */
  #resume(conn: Connection, session: Session, next: Cursor | undefined): void {
    if (conn.localCloseReason) return;
    this.#o.logger.warn('ws_events_missed', {
      uid: session.uid,
      session_id: session.id,
      cursor: session.lastCursor,
      // No next event: the stream was made anew (Redis restarted empty while the bus was away).
      next: next ?? null,
    });
    conn.close(CloseCode.ServiceRestart, 'events missed: resume', 'service_restart');
  }

  /** Sessions per user, for /debug. */
  describe() {
    return [...this.#users.keys()].map((uid) => ({
      uid,
      sessions: this.sessionsOf(uid).map((s) => ({
        session_id: s.id,
        route: s.route,
        cursor: s.lastCursor,
        // The registry entry this instance would write back after a stall (REGISTRY.register_user's route).
        registered_route: registeredRoute(s.registration),
      })),
    }));
  }
}

/** The route of a registry entry as kept (`RegistrySession` JSON); null without one (or unreadable). */
function registeredRoute(registration: string | undefined): string | null {
  if (registration === undefined) return null;
  try {
    const route = (JSON.parse(registration) as { route?: unknown }).route;
    return typeof route === 'string' ? route : null;
  } catch {
    return null;
  }
}
