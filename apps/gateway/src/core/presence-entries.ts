import { CloseCode } from '@livebus/protocol';
import type { PresenceAddResult, SessionEntry } from '../fleet/presence/presence';
import type { Admitting, CoreContext } from './context';
import type { Connection, Session } from './session';

/** The session as the fleet's presence directory records it. */
export function entryOf(ctx: Pick<CoreContext, 'config'>, session: Session): SessionEntry {
  return { sessionId: session.id, instanceId: ctx.config.instanceId, route: session.route, connectedAt: Date.now() };
}

/** Takes the session out of presence (fenced: a newer holder of the same id keeps its entry). */
export async function removePresence(
  ctx: Pick<CoreContext, 'config' | 'presence' | 'logger'>,
  session: Session,
  /** A failure logged at debug only (a remove that follows a failed write). */
  quiet = false,
) {
  try {
    await ctx.presence.remove(session.uid, session.id, ctx.config.instanceId);
  } catch (error) {
    // The heartbeat extends only the entries of open sessions: this one expires within INSTANCE_TTL_MS.
    const fields = { uid: session.uid, session_id: session.id, op: 'remove', error: String(error) };
    if (quiet) ctx.logger.debug('presence_error', fields);
    else ctx.logger.warn('presence_error', fields);
  }
}

/**
 * A closed session's entry, or the entry of a hello that gave up, leaves presence unless it is
 * not theirs any more: a newer hello of the same session id is writing its entry (the entry is
 * that hello's to keep: it opens, before this one counts as gone; or to take back: Admitting,
 * context.ts), or a session of the id is open here (a newer one, or the older socket of the
 * tab a hello gave up for: the entry, of this instance, is that session's).
 */
export function leaveEntry(
  ctx: Pick<CoreContext, 'admitting' | 'config' | 'hub' | 'presence' | 'logger'>,
  session: Session,
  quiet = false,
): Promise<void> {
  const successor = ctx.admitting.get(admittingKey(session.uid, session.id));
  if (successor) return new Promise<void>((resolve) => handOver(successor, resolve));
  if (ctx.hub.get(session.uid, session.id)) return Promise.resolve();
  return removePresence(ctx, session, quiet);
}

/** Leaves the entry to a hello, after any other session or hello that left it to that hello already. */
function handOver(successor: Admitting, gone: () => void): void {
  const before = successor.predecessorClosed;
  successor.predecessorClosed = before
    ? () => {
        before();
        gone();
      }
    : gone;
}

/** The key of {@link CoreContext.admitting}: a user's session id. */
export function admittingKey(uid: string, sessionId: string): string {
  // Length first: no other pair of ids makes the same key.
  return `${uid.length}:${uid}${sessionId}`;
}

/**
 * The fleet decides, atomically: the session limit counts every instance, and a session id
 * already held (the same tab reconnecting) is taken over wherever its old socket is.
 * Undefined when the session may not open (the socket is closed, or closing); an entry written
 * then is taken back by {@link endAdmitting}.
 */
export async function admit(
  ctx: Pick<CoreContext, 'config' | 'presence' | 'logger'>,
  session: Session,
  admitting: Admitting,
): Promise<Extract<PresenceAddResult, { refused: false }> | undefined> {
  const conn = session.connection;
  let added: PresenceAddResult;
  try {
    added = await ctx.presence.add(session.uid, entryOf(ctx, session), { maxSessions: ctx.config.maxSessionsPerUser });
  } catch (error) {
    // The write may have been done (its reply lost with the connection): taken back as written.
    // The remove is fenced, and takes nothing when nothing was written.
    admitting.written = 'maybe';
    ctx.logger.warn('presence_error', { uid: session.uid, session_id: session.id, op: 'add', error: String(error) });
    conn.close(CloseCode.TryAgainLater, 'try again later');
    return undefined;
  }
  if (!added.refused) admitting.written = true;
  if (!stillOpening(conn)) return undefined;
  if (added.refused) {
    conn.close(CloseCode.TooManySessions, 'too many sessions');
    return undefined;
  }
  return added;
}

/**
 * Reads the session's registry entry again (another instance changed it): the entry a stall's
 * re-announce writes back. Read on the connection this instance writes the registry on, so the
 * read is ordered with its own register/unregister of the session.
 */
export function rereadRegistration(ctx: Pick<CoreContext, 'registry' | 'logger'>, session: Session): void {
  ctx.registry.getSessions(session.uid).then(
    (sessions) => {
      const entry = sessions.find((s) => s.session_id === session.id);
      session.registration = entry && JSON.stringify(entry);
    },
    (error: unknown) =>
      ctx.logger.warn('presence_error', {
        uid: session.uid,
        session_id: session.id,
        op: 'registration',
        error: String(error),
      }),
  );
}

/** The hello's socket is open and its session not yet: it may go on. */
export function stillOpening(conn: Connection): boolean {
  return conn.phase === 'admitting' && conn.socket.isOpen;
}

/**
 * Registers a hello as the holder of its session id's entry from its presence write until its
 * session opens or it gives up (Admitting, context.ts); {@link endAdmitting} ends that.
 */
export function startAdmitting(ctx: Pick<CoreContext, 'admitting'>, session: Session): Admitting {
  const admitting: Admitting = {};
  ctx.admitting.set(admittingKey(session.uid, session.id), admitting);
  return admitting;
}

/**
 * The hello's session opened, or the hello gave up: then the entry it wrote, or the one a closed
 * predecessor left to it, leaves presence ({@link leaveEntry}). Those that left the entry to
 * this hello go on once it is the new session's or has left.
 */
export function endAdmitting(
  ctx: Pick<CoreContext, 'admitting' | 'config' | 'hub' | 'presence' | 'logger'>,
  session: Session,
  admitting: Admitting,
  opened: boolean,
): void {
  const key = admittingKey(session.uid, session.id);
  if (ctx.admitting.get(key) === admitting) ctx.admitting.delete(key);
  const { predecessorClosed, written } = admitting;
  if (opened) predecessorClosed?.();
  // A remove after a failed write fails too as a rule (Redis away): its failure is not news.
  else if (written || predecessorClosed) void leaveEntry(ctx, session, written === 'maybe').finally(predecessorClosed);
}
