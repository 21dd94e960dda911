import { CloseCode, compareCursors, serializeFrame } from '@livebus/protocol';
import type { EventBus, StoredEvent, Unsubscribe } from './bus/event-bus';
import type { Logger } from './logger';
import type { Connection, Session } from './session';

/** Options of {@link SessionHub}. */
export interface SessionHubOptions {
  bus: EventBus;
  logger: Logger;
  /** A socket with more unsent bytes than this is closed as a slow consumer. */
  maxBufferedBytes: number;
  /** Called for every event frame written to a session (metrics). */
  onDelivered?: () => void;
}

interface UserSessions {
  sessions: Map<string, Session>;
  /** Settles once the bus subscription is live; rejects if it could not be made. */
  subscribed: Promise<Unsubscribe>;
}

/**
 * The live sessions of this instance, grouped by user, and the fan-out of
 * each user's event stream to them. A user is subscribed to the bus while at
 * least one of their sessions is open.
 */
export class SessionHub {
  readonly #users = new Map<string, UserSessions>();
  readonly #o: SessionHubOptions;
  #count = 0;

  constructor(options: SessionHubOptions) {
    this.#o = options;
  }

  /** Number of open sessions. */
  get sessionCount(): number {
    return this.#count;
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
    return this.#users.get(userId)?.sessions.get(sessionId);
  }

  /** Number of open sessions of the user. */
  countOf(userId: string): number {
    return this.#users.get(userId)?.sessions.size ?? 0;
  }

  /** The user's open sessions on this instance. */
  sessionsOf(userId: string): Session[] {
    return [...(this.#users.get(userId)?.sessions.values() ?? [])];
  }

  userIds(): IterableIterator<string> {
    return this.#users.keys();
  }

  /**
   * Adds a session (replacing one with the same id); subscribes the user on their
   * first. Resolves once the user's subscription is live, so that a replay read
   * afterwards cannot miss an event published in between. Rejects (and removes
   * the session) when the bus cannot subscribe.
   */
  async add(session: Session): Promise<void> {
    let user = this.#users.get(session.uid);
    if (!user) {
      const sessions = new Map<string, Session>();
      const subscribed = this.#o.bus.subscribe(session.uid, (event, wire) => {
        // Validated and serialised once per event, whatever the number of sessions;
        // not at all when the bus hands over the frame's text, validated at publish.
        const text = wire ?? serializeFrame(event);
        for (const s of sessions.values()) this.deliver(s, event, text);
      });
      user = { sessions, subscribed };
      this.#users.set(session.uid, user);
    }
    if (!user.sessions.has(session.id)) this.#count++;
    user.sessions.set(session.id, session);
    try {
      await user.subscribed;
    } catch (error) {
      this.remove(session);
      throw error;
    }
  }

  /** Removes a session if it is still the current one for its id; returns whether it was. */
  remove(session: Session): boolean {
    const user = this.#users.get(session.uid);
    if (!user || user.sessions.get(session.id) !== session) return false;
    user.sessions.delete(session.id);
    this.#count--;
    if (user.sessions.size === 0) {
      this.#users.delete(session.uid);
      user.subscribed.then(
        (unsubscribe) =>
          unsubscribe().catch((error: unknown) =>
            this.#o.logger.warn('bus_unsubscribe_error', { uid: session.uid, error: String(error) }),
          ),
        () => {
          // Never subscribed: nothing to undo.
        },
      );
    }
    return true;
  }

  /**
   * Writes an event to a session, exactly once: events at or below the
   * session's cursor were already written (replay and live overlap), and events
   * arriving while the session's replay is prepared wait in `session.pending`.
   */
  deliver(session: Session, event: StoredEvent, text = serializeFrame(event)): void {
    // Same epoch and not past the session's position: already written. Another epoch is a new stream.
    if (session.lastCursor !== undefined && (compareCursors(event.cursor, session.lastCursor) ?? 1) <= 0) return;
    if (session.pending) {
      session.pending.push(event);
      return;
    }
    const conn = session.connection;
    if (conn.socket.bufferedAmount > this.#o.maxBufferedBytes) {
      this.#slowConsumer(conn);
      return;
    }
    if (conn.sendText(text)) {
      session.lastCursor = event.cursor;
      this.#o.onDelivered?.();
    }
  }

  #slowConsumer(conn: Connection): void {
    if (conn.localCloseReason) return;
    this.#o.logger.warn('ws_slow_consumer', {
      uid: conn.session?.uid,
      session_id: conn.session?.id,
      buffered_bytes: conn.socket.bufferedAmount,
    });
    conn.close(CloseCode.SlowConsumer, 'slow consumer', 'slow_consumer');
    // The close frame waits behind the full buffer; do not wait for it forever.
    setTimeout(() => conn.terminate(), 1_000).unref();
  }

  /** Sessions per user, for /debug. */
  describe() {
    return [...this.#users].map(([uid, u]) => ({
      uid,
      sessions: [...u.sessions.values()].map((s) => ({ session_id: s.id, route: s.route, cursor: s.lastCursor })),
    }));
  }
}
