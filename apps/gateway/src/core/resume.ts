import { CloseCode, type Cursor, PROTOCOL_VERSION } from '@livebus/protocol';
import { liveEventOf } from '../fleet/bus/event-bus';
import type { CoreContext } from './context';
import type { Session } from './session';

/**
 * The welcome of a session just opened, then what it missed: the events after its
 * `lastCursor` (a resume), then the live events that arrived meanwhile. Resolves true
 * once the welcome is out; false when the connection closed meanwhile or the stream
 * could not be read (then the socket is closed 1011 and the client reconnects).
 *
 * `subscribed`: the session's live subscription. Live events wait in `session.pending`
 * while the replay is read, and the replay is read only once the subscription is live,
 * so nothing published in between is missed.
 */
export async function welcome(
  ctx: CoreContext,
  session: Session,
  lastCursor: Cursor | undefined,
  subscribed: Promise<void>,
): Promise<boolean> {
  const { config, bus, hub } = ctx;
  const conn = session.connection;
  try {
    await subscribed;
    const read = lastCursor === undefined ? undefined : await bus.readSince(session.uid, lastCursor);
    // A fresh session starts where the bus's live delivery stands (the head it read when
    // it subscribed, or its last event since): one Redis round trip less per hello.
    const head = read ? read.cursor : (bus.position?.(session.uid) ?? (await bus.head(session.uid)));
    if (conn.session !== session || conn.phase !== 'open') return false;
    const status = read === undefined ? 'fresh' : read.status;
    if (status !== 'resumed') session.lastCursor = head;
    conn.sendTrusted({
      type: 'welcome',
      v: PROTOCOL_VERSION,
      session_id: session.id,
      user_id: session.uid,
      instance_id: config.instanceId,
      heartbeat: { ping_interval_ms: config.pingIntervalMs, ping_timeout_ms: config.pingTimeoutMs },
      resume: { status, cursor: head, replayed: read?.events.length ?? 0 },
    });
    // After the welcome: a token accepted within the clock tolerance is asked for at once,
    // and a notice before the welcome would reach a client not yet able to answer it.
    ctx.lifetime.track(session);
    // Replayed events are frames our publish path validated and stored: serialised as they
    // are, as the live path sends them, not validated again (zod per replayed event).
    const replay = read?.events.map((e) => liveEventOf(e, JSON.stringify(e))) ?? [];
    const backlog = [...replay, ...(session.pending ?? [])];
    session.pending = undefined;
    for (const event of backlog) hub.deliver(session, event);
    if (read) {
      ctx.hooks.emit('session.replay', {
        uid: session.uid,
        sessionId: session.id,
        events: read.events.length,
        gap: read.status === 'gap',
      });
    }
    return true;
  } catch (error) {
    ctx.logger.error('ws_resume_error', { uid: session.uid, session_id: session.id, error: String(error) });
    conn.close(CloseCode.InternalError, 'internal error');
    return false;
  }
}
