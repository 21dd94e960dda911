import type { WatermarkStore } from './watermark-store';

/** What {@link holdBeforeMark} holds and whom it tells. */
export interface HoldBeforeMarkOptions {
  /** The document path whose snapshot's mark is never stored. */
  path: string;
  /** Called once the snapshot's events are published and its mark is held (the test kills the process then). */
  onHold: (held: { userId: string; listener: string; path: string }) => void;
}

/**
 * TEST ONLY (`LIVEBUS_TEST_HOLD_BEFORE_MARK`, read by main.ts, never set in production):
 * a watermark store that, for the snapshot that changed `path`, never stores the mark
 * (its `set` never settles) and says so. A listener stores a snapshot's mark only after
 * publishing its events, so the process then sits exactly between the two, where a
 * SIGKILL from the test leaves events in the user's stream that no stored mark covers:
 * the case a new owner's replay of the stream exists for (docs/listeners.md).
 */
export function holdBeforeMark(store: WatermarkStore, options: HoldBeforeMarkOptions): WatermarkStore {
  return {
    get: (userId) => store.get(userId),
    set(userId, listener, mark, fence, delta, cursor) {
      const touched = delta && (delta.put[options.path] !== undefined || delta.del.includes(options.path));
      if (!touched) return store.set(userId, listener, mark, fence, delta, cursor);
      options.onHold({ userId, listener, path: options.path });
      return new Promise<boolean>(() => {});
    },
    forget: (userId, listener) => store.forget(userId, listener),
    clear: (userId) => store.clear(userId),
  };
}
