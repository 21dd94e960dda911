import { CloseCode, type Cursor, formatCursor, PROTOCOL_VERSION, parseCursor } from '@livebus/protocol';
import { isTransientRedisError } from '@livebus/publisher';
import { type EventBus, liveEventOf, type StoredEvent } from '../fleet/bus/event-bus';
import type { CoreContext } from './context';
import type { Connection, Session } from './session';

/**
 * The welcome of a session just opened, then what it missed: the events after its
 * `lastCursor` (a resume), then the live events that arrived meanwhile. Resolves true
 * once the welcome is out; false when the connection closed meanwhile or the stream
 * could not be read (then the socket is closed, 1013 when Redis is away, else 1011, and the
 * client reconnects).
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
    const read = lastCursor === undefined ? undefined : await readMissed(bus, session.uid, lastCursor);
    // A fresh session starts where the bus's live delivery stands (the head it read when
    // it subscribed, or its last event since): one Redis round trip less per hello.
    const head = read ? read.cursor : (bus.position?.(session.uid) ?? (await bus.head(session.uid)));
    // The welcome and the replay wait for their slice of the event loop, not in the turn that
    // read the last reply (a storm's replies come in by the hundred): live events meanwhile
    // are held in session.pending, as during the reads.
    await nextTurn(ctx, conn);
    // Closing counts (a close is only heard once the peer answers it).
    if (conn.session !== session || conn.phase !== 'open' || !conn.socket.isOpen) return false;
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
    // Then the live events held meanwhile (no array made for a fresh session that has neither).
    const pending = session.pending;
    session.pending = undefined;
    // A gap's replay holds what the bus retains, holes and all (offsets skip at a failover):
    // written in order, the client told `gap` once, by the welcome.
    const pastHoles = status === 'gap';
    if (read) for (const e of read.events) hub.deliver(session, liveEventOf(e, JSON.stringify(e)), pastHoles);
    if (pending) for (const event of pending) hub.deliver(session, event);
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
    // Closed or closing meanwhile (the handshake timeout: handshake_stalled said so): nothing to tell or close.
    if (conn.session !== session || conn.phase !== 'open' || !conn.socket.isOpen) return false;
    const fields = { uid: session.uid, session_id: session.id, error: String(error) };
    if (isTransientRedisError(error)) {
      // Redis away (a failover, a node that does not answer): the client tries again, as after a
      // presence write that failed.
      ctx.logger.warn('ws_resume_error', fields);
      conn.close(CloseCode.TryAgainLater, 'try again later');
    } else {
      ctx.logger.error('ws_resume_error', fields);
      conn.close(CloseCode.InternalError, 'internal error');
    }
    return false;
  }
}

/**
 * What a resuming session missed. `resumed`: the events after its cursor, `cursor` the
 * stream's head. `gap`: some are gone; `cursor` is where the session continues from and
 * `events` what follows it. When the stream was made anew since the cursor (another
 * epoch: Redis restarted empty, the keys expired, an in-memory gateway restarted), every
 * event of the new epoch came after it: they are replayed from the epoch's start (what is
 * still retained of it), as the Redis bus's own catch-up does. A gap within the cursor's
 * epoch (trimmed past it, or offsets skipped at a failover) replays what the bus still
 * retains after the cursor, holes and all, when it can read past a hole (`readRetained`,
 * the Redis bus); else it continues from the head.
 */
async function readMissed(
  bus: EventBus,
  uid: string,
  lastCursor: Cursor,
): Promise<{ status: 'resumed' | 'gap'; events: StoredEvent[]; cursor: Cursor }> {
  const read = await bus.readSince(uid, lastCursor);
  if (read.status === 'resumed') return read;
  const head = parseCursor(read.cursor);
  if (!head || head.offset === 0) return read;
  const sameEpoch = head.epoch === parseCursor(lastCursor)?.epoch;
  // Within the cursor's epoch, only a bus that can read past a hole has more to give.
  if (sameEpoch && !bus.readRetained) return read;
  const start = sameEpoch ? lastCursor : formatCursor(head.epoch, 0);
  const fresh = bus.readRetained ? await bus.readRetained(uid, start) : await bus.readSince(uid, start);
  // Made anew once more in between: nothing of this epoch to replay, continue from its head.
  if (fresh.status !== 'resumed') return { status: 'gap', events: [], cursor: fresh.cursor };
  const first = fresh.events[0] ? parseCursor(fresh.events[0].cursor) : undefined;
  // Trimmed from its start already: continue right before the first event still held.
  const from = first && first.epoch === head.epoch ? formatCursor(head.epoch, first.offset - 1) : fresh.cursor;
  return { status: 'gap', events: first ? fresh.events : [], cursor: from };
}

/** The connection's hello waits for its slice of the event loop, if the gateway slices them (marked meanwhile). */
export async function nextTurn(ctx: Pick<CoreContext, 'slices' | 'waitingTurn'>, conn: Connection): Promise<void> {
  if (!ctx.slices) return;
  ctx.waitingTurn.add(conn);
  await ctx.slices.next();
  ctx.waitingTurn.delete(conn);
}
