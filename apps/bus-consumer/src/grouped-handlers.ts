import type { EventFrame, EventType } from '@livebus/protocol';

/** An event frame of type `E`. */
export type EventOf<E extends EventType> = Extract<EventFrame, { event: E }>;

/** Options for grouped handlers: events of one key collected over a window and handled as one batch. */
export interface GroupOptions<E extends EventType> {
  /** How long to collect after the first event of a key. */
  groupWindowMs: number;
  /** The key events are grouped by. @default every event of the type in one group */
  groupBy?: (event: EventOf<E>) => string;
}

/** A listener that batches, and the function that hands over what it still holds. */
export interface GroupedListener {
  listener: (frame: EventFrame) => void;
  /** Hands every batch collected so far to the handler now (on unsubscribe, so nothing is lost). */
  flushAll: () => void;
}

/**
 * Builds the listener behind `on(type, handler, { groupWindowMs, groupBy })`:
 * the first event of a key opens a window, events of that key arriving within
 * it join the batch, and the batch goes to `handler` when the window ends.
 * `run` calls the handler so that a throwing one is reported, not propagated.
 */
export function groupedListener<E extends EventType>(
  handler: (batch: EventOf<E>[]) => void,
  group: GroupOptions<E>,
  run: (fn: () => void) => void,
): GroupedListener {
  if (!(group.groupWindowMs > 0)) throw new TypeError('groupWindowMs must be positive');
  const batches = new Map<string, { events: EventOf<E>[]; timer: ReturnType<typeof setTimeout> }>();
  const flush = (key: string) => {
    const batch = batches.get(key);
    if (!batch) return;
    batches.delete(key);
    clearTimeout(batch.timer);
    run(() => handler(batch.events));
  };
  return {
    listener: (frame) => {
      const event = frame as EventOf<E>;
      const key = group.groupBy ? group.groupBy(event) : '';
      const batch = batches.get(key);
      if (batch) batch.events.push(event);
      else batches.set(key, { events: [event], timer: setTimeout(() => flush(key), group.groupWindowMs) });
    },
    flushAll: () => {
      for (const key of [...batches.keys()]) flush(key);
    },
  };
}
