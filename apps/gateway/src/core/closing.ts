import { classifyDisconnect } from '@livebus/protocol';
import type { CoreContext } from './context';
import { leaveEntry } from './presence-entries';
import type { Connection } from './session';

/**
 * Close bookkeeping: whichever side closed, and however (close handshake, terminate,
 * network), a connection closes once (hook session.close, with its classified reason:
 * logs and the disconnect counter subscribe), and its session leaves the hub, presence
 * and then the listeners manager (whose detach decision reads presence).
 */
export function createClosing(ctx: CoreContext) {
  const { hooks } = ctx;
  /** Closed sessions still being removed from presence; shutdown waits for them before flushing detaches. */
  const closings = new Set<Promise<void>>();

  function onClose(conn: Connection, code: number, reason: string): void {
    if (conn.phase === 'closed') return;
    conn.phase = 'closed';
    clearTimeout(conn.handshakeTimer);
    // Closed before its welcome: admission control stops counting it.
    ctx.counts.get(conn)?.done();
    ctx.counts.delete(conn);
    ctx.connections.delete(conn);
    const type = classifyDisconnect(code, conn.localCloseReason ?? reason);
    const session = conn.session;
    if (!session) {
      hooks.emit('session.close', { code, reason, type, authenticated: false });
      return;
    }
    ctx.lifetime.untrack(session);
    ctx.tracker.record(session.uid, type);
    hooks.emit('session.close', { uid: session.uid, sessionId: session.id, code, reason, type, authenticated: true });
    // Not the hub's any more either when its subscription failed (the hub removed it then):
    // its entry and its place with the listeners are still this close's to end.
    ctx.hub.remove(session);
    // A replaced session: its successor already took over its listeners and its presence entry.
    if (session.replaced) return;
    // The detach decision reads presence: this session must be gone from it before the delay starts.
    const closing = leaveEntry(ctx, session).finally(() => {
      closings.delete(closing);
      ctx.listeners.sessionClosed(session.uid, session.id);
    });
    closings.add(closing);
  }

  /** Settles once every closed session has been handed to the listeners manager. */
  async function settled(): Promise<void> {
    while (closings.size > 0) await Promise.allSettled([...closings]);
  }

  return { onClose, settled };
}
