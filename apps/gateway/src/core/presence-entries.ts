import type { SessionEntry } from '../fleet/presence/presence';
import type { CoreContext } from './context';
import type { Session } from './session';

/** The session as the fleet's presence directory records it. */
export function entryOf(ctx: Pick<CoreContext, 'config'>, session: Session): SessionEntry {
  return { sessionId: session.id, instanceId: ctx.config.instanceId, route: session.route, connectedAt: Date.now() };
}

/** Takes the session out of presence (fenced: a newer holder of the same id keeps its entry). */
export async function removePresence(ctx: Pick<CoreContext, 'config' | 'presence' | 'logger'>, session: Session) {
  try {
    await ctx.presence.remove(session.uid, session.id, ctx.config.instanceId);
  } catch (error) {
    // It expires with this instance's heartbeat lapse, after INSTANCE_TTL_MS.
    ctx.logger.warn('presence_error', { uid: session.uid, session_id: session.id, op: 'remove', error: String(error) });
  }
}

/** The key of {@link CoreContext.admitting}: a user's session id. */
export function admittingKey(uid: string, sessionId: string): string {
  // Length first: no other pair of ids makes the same key.
  return `${uid.length}:${uid}${sessionId}`;
}
