import type { EventFrame, EventType } from '@livebus/protocol';

/** An event frame of type `E`. */
export type EventOf<E extends EventType> = Extract<EventFrame, { event: E }>;

/** Options for grouped handlers: events of one key collected over a window and handled as one batch. */
export interface GroupOptions<E extends EventType> {
  /**
   * How long to collect. In `fixed` mode the window starts with the first event of a key
   * and does not move (later events join the batch, they do not extend it); in
   * `debounce` mode it restarts with every event of the key.
   */
  groupWindowMs: number;
  /** The key events are grouped by. @default every event of the type in one group */
  groupBy?: (event: EventOf<E>) => string;
  /**
   * `fixed`: a batch goes out `groupWindowMs` after its first event (what the livebus bridge
   * does). `debounce`: once its key has been quiet for `groupWindowMs`.
   * @default 'fixed'
   */
  groupMode?: 'fixed' | 'debounce';
  /**
   * `debounce` only: a batch goes out at the latest this long after its first event, however
   * busy its key (without it, a key that never goes quiet is never handed over).
   * @default undefined (no limit)
   */
  groupMaxWaitMs?: number;
}

/** A listener that batches, and the function that hands over what it still holds. */
export interface GroupedListener {
  listener: (frame: EventFrame) => void;
  /** Hands every batch collected so far to the handler now and clears its timer (unsubscribe, close). */
  flushAll: () => void;
}

interface Batch<T> {
  events: T[];
  /** When the batch must go out at the latest (debounce with groupMaxWaitMs). */
  deadline: number;
  timer: ReturnType<typeof setTimeout>;
}

/**
 * Builds the listener behind `on(type, handler, { groupWindowMs, groupBy, groupMode })`:
 * the first event of a key opens a window, events of that key arriving within
 * it join the batch, and the batch goes to `handler` when the window ends.
 * `run` calls the handler so that a throwing one is reported, not propagated.
 * `now` is the clock the debounce cap is measured with.
 */
export function groupedListener<E extends EventType>(
  handler: (batch: EventOf<E>[]) => void,
  group: GroupOptions<E>,
  run: (fn: () => void) => void,
  now: () => number = Date.now,
): GroupedListener {
  const { groupWindowMs: windowMs, groupMode: mode = 'fixed', groupMaxWaitMs: maxWaitMs } = group;
  if (!(windowMs > 0)) throw new TypeError('groupWindowMs must be positive');
  if (mode !== 'fixed' && mode !== 'debounce') throw new TypeError(`groupMode must be 'fixed' or 'debounce'`);
  if (maxWaitMs !== undefined && !(maxWaitMs >= windowMs)) {
    throw new TypeError('groupMaxWaitMs must be at least groupWindowMs');
  }
  const batches = new Map<string, Batch<EventOf<E>>>();
  const flush = (key: string) => {
    const batch = batches.get(key);
    if (!batch) return;
    batches.delete(key);
    clearTimeout(batch.timer);
    run(() => handler(batch.events));
  };
  const arm = (key: string, delayMs: number) => setTimeout(() => flush(key), Math.max(0, delayMs));
  return {
    listener: (frame) => {
      const event = frame as EventOf<E>;
      const key = group.groupBy ? group.groupBy(event) : '';
      const batch = batches.get(key);
      if (!batch) {
        const deadline = maxWaitMs === undefined ? Number.POSITIVE_INFINITY : now() + maxWaitMs;
        batches.set(key, { events: [event], deadline, timer: arm(key, windowMs) });
        return;
      }
      batch.events.push(event);
      if (mode === 'debounce') {
        clearTimeout(batch.timer);
        batch.timer = arm(key, Math.min(windowMs, batch.deadline - now()));
      }
    },
    flushAll: () => {
      for (const key of [...batches.keys()]) flush(key);
    },
  };
}
