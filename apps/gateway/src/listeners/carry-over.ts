import { type Cursor, compareCursors, type ListenerChange } from '@livebus/protocol';
import type { ReadResult, StoredEvent } from '../fleet/bus/event-bus';
import { type DeliveredDelta, type DeliveredDocs, markOfText } from './watermark-store';

/**
 * What a listener published but could not store (Redis away, or its lease already
 * lost when the publish completed): the read time of its last published snapshot and
 * the changes to its delivered set since its last stored mark.
 */
export interface UnsavedMark {
  /** Read time of the last snapshot whose events were all published. */
  mark: string;
  /** Paths delivered as present since the last stored mark -> their update time. */
  put: DeliveredDocs;
  /** Paths delivered as removed since the last stored mark -> the read time of the removal. */
  del: DeliveredDocs;
  /** The delivered set overflowed its bound meanwhile. */
  overflow: boolean;
  /** Cursor, in the user's stream, of the last event the mark covers; undefined: none published. */
  cursor?: Cursor;
}

/** Where a listener resumes from: what the store holds, merged with what this instance carried over. */
export interface MergedResume {
  mark: string | undefined;
  docs: DeliveredDocs;
  overflowed: boolean;
  /** What the store lacks of the merge (save it with the new lease token); undefined: nothing. */
  unsaved: UnsavedMark | undefined;
}

const later = (a: string, b: string) => BigInt(a) > BigInt(b);

/**
 * The later of two cursors of the user's stream: in one epoch the larger offset;
 * across epochs (the stream was reset) they cannot be ordered, so `newer`, the one
 * seen more recently, wins.
 */
export function laterCursor(older: Cursor | undefined, newer: Cursor | undefined): Cursor | undefined {
  if (older === undefined || newer === undefined) return newer ?? older;
  return (compareCursors(older, newer) ?? -1) > 0 ? older : newer;
}

/**
 * Merges a listener's stored state with what this instance published but never
 * stored. Each event this instance published is in the user's stream whoever held
 * the lease afterwards, so counting it as delivered only removes duplicates; per
 * path the later event wins (a delivery at its update time, a removal at the read
 * time of its snapshot), so a later owner's newer delivery is kept. The mark is the
 * later of the two.
 */
export function mergeCarried(
  stored: { mark: string | undefined; docs: DeliveredDocs; overflowed: boolean; cursor?: Cursor },
  carried: UnsavedMark | undefined,
): MergedResume {
  if (!carried) return { ...stored, docs: { ...stored.docs }, unsaved: undefined };
  const docs = { ...stored.docs };
  const mark = stored.mark === undefined || later(carried.mark, stored.mark) ? carried.mark : stored.mark;
  // Never an older mark (or cursor) than the stored one: the store overwrites it.
  const cursor = laterCursor(stored.cursor, carried.cursor);
  const unsaved: UnsavedMark = { mark, put: {}, del: {}, overflow: carried.overflow, ...(cursor ? { cursor } : {}) };
  for (const [path, updated] of Object.entries(carried.put)) {
    const current = docs[path];
    if (current !== undefined && !later(updated, current)) continue;
    docs[path] = updated;
    unsaved.put[path] = updated;
  }
  for (const [path, removedAt] of Object.entries(carried.del)) {
    const current = docs[path];
    // Kept when the stored version is newer than the removal (delivered again after it).
    if (current === undefined || later(current, removedAt)) continue;
    delete docs[path];
    unsaved.del[path] = removedAt;
  }
  return { mark, docs, overflowed: stored.overflowed || carried.overflow, unsaved };
}

/**
 * Adds a published snapshot's delivered-set changes (removals at `removedAt`) to an
 * unsaved mark, with the cursor of its last event (undefined: it published none).
 */
export function addToUnsaved(
  unsaved: UnsavedMark | undefined,
  mark: string,
  delta: DeliveredDelta,
  removedAt: string,
  cursor?: Cursor,
): UnsavedMark {
  const next: UnsavedMark = unsaved ?? { mark, put: {}, del: {}, overflow: false };
  if (unsaved === undefined || later(mark, next.mark)) next.mark = mark;
  const last = laterCursor(next.cursor, cursor);
  if (last) next.cursor = last;
  for (const path of delta.del) {
    delete next.put[path];
    next.del[path] = removedAt;
  }
  for (const [path, updated] of Object.entries(delta.put)) {
    delete next.del[path];
    next.put[path] = updated;
  }
  if (delta.overflow) next.overflow = true;
  return next;
}

/** An unsaved mark as the delta a {@link import('./watermark-store').WatermarkStore} writes. */
export function deltaOf(unsaved: UnsavedMark): DeliveredDelta {
  return {
    put: { ...unsaved.put },
    del: Object.keys(unsaved.del),
    ...(unsaved.overflow ? { overflow: true } : {}),
  };
}

/**
 * What a listener published after its stored cursor, read back from the user's
 * stream (`events`, in stream order): the changes a dead owner published but never
 * stored, as an unsaved mark at the stored `mark` (the read time of its last snapshot
 * is not in its events). Only the `listener.change` events that `belong` to the
 * listener count; the cursor is that of the last one. Undefined when there is none.
 */
export function carriedFromStream(
  events: readonly StoredEvent[],
  belongs: (of: ListenerOf) => boolean,
  mark: string,
): UnsavedMark | undefined {
  let carried: UnsavedMark | undefined;
  for (const event of events) {
    if (event.event !== 'listener.change' || !belongs(event.data)) continue;
    const { path, change, update_time } = event.data;
    const at = update_time === undefined ? undefined : markOfText(update_time);
    if (at === undefined) continue;
    const delta: DeliveredDelta = change === 'removed' ? { put: {}, del: [path] } : { put: { [path]: at }, del: [] };
    carried = addToUnsaved(carried, mark, delta, at, event.cursor);
  }
  return carried;
}

/** Which listener an event is of: the fields `listener.change` and `listener.status` share. */
export type ListenerOf = Pick<ListenerChange, 'source' | 'listener' | 'path'>;

/**
 * The kind of the listener's last `failing` status in `events` (stream order) whose end the
 * user was not told (no `recovered`, nor a `failing` with `retrying: false`, after it);
 * undefined when there is none. A new holder tells the recovery of what its predecessor told.
 */
export function toldFromStream(
  events: readonly StoredEvent[],
  belongs: (of: ListenerOf) => boolean,
): string | undefined {
  let told: string | undefined;
  for (const event of events) {
    if (event.event !== 'listener.status' || !belongs(event.data)) continue;
    const { status, kind, retrying } = event.data;
    told = status === 'failing' && retrying !== false ? kind : undefined;
  }
  return told;
}

/** What {@link replayListener} read back: changes to carry over, and a failure the user was told of. */
export interface Replayed {
  carried?: UnsavedMark;
  told?: string;
}

/**
 * {@link replayCarried}, and the listener's failure told to the user and not ended yet
 * ({@link toldFromStream}), from the same read. A cursor without a mark (a listener that
 * told a failure before it delivered anything) gives only the failure.
 */
export async function replayListener(
  readSince: ((cursor: Cursor) => Promise<ReadResult>) | undefined,
  stored: { mark: string | undefined; cursor: Cursor | undefined },
  belongs: (of: ListenerOf) => boolean,
  onSkipped: (reason: string) => void,
): Promise<Replayed> {
  const { mark, cursor } = stored;
  if (!readSince || cursor === undefined) return {};
  try {
    const read = await readSince(cursor);
    if (read.status === 'resumed') {
      const carried = mark === undefined ? undefined : carriedFromStream(read.events, belongs, mark);
      const told = toldFromStream(read.events, belongs);
      return { ...(carried ? { carried } : {}), ...(told === undefined ? {} : { told }) };
    }
    onSkipped('gap');
  } catch (error) {
    onSkipped(String(error));
  }
  return {};
}

/**
 * Reads the user's stream after a listener's stored cursor (see {@link carriedFromStream}).
 * Undefined when there is nothing to read (no cursor, no reader) or it cannot be
 * read: `onSkipped` hears why (`gap`: events are gone, or an error), and the
 * listener resumes from the stored mark alone, re-sending what it published since.
 */
export async function replayCarried(
  readSince: ((cursor: Cursor) => Promise<ReadResult>) | undefined,
  stored: { mark: string | undefined; cursor: Cursor | undefined },
  belongs: (of: ListenerOf) => boolean,
  onSkipped: (reason: string) => void,
): Promise<UnsavedMark | undefined> {
  return (await replayListener(readSince, stored, belongs, onSkipped)).carried;
}

/**
 * Per user, on one instance: the unsaved marks of listeners that stopped before they
 * could store them, taken by the next attach of the same listener here and merged
 * into what the store holds; and a signal, on each lease renewal, to retry saving a
 * mark that Redis refused to take while it was away. The manager drops it when the
 * user leaves this instance, so it is bounded by the listeners' delivered sets.
 */
export class CarryOver {
  readonly #carried = new Map<string, UnsavedMark>();
  readonly #retries = new Set<() => void>();

  /** Keeps a stopped listener's unsaved mark (merged with one kept before and not taken since). */
  keep(listener: string, unsaved: UnsavedMark): void {
    const before = this.#carried.get(listener);
    if (!before) {
      this.#carried.set(listener, unsaved);
      return;
    }
    // The newer one replayed over the older one, path by path (a path is in put or del, not both).
    const cursor = laterCursor(before.cursor, unsaved.cursor);
    const merged: UnsavedMark = {
      mark: later(unsaved.mark, before.mark) ? unsaved.mark : before.mark,
      put: { ...before.put },
      del: { ...before.del },
      overflow: before.overflow || unsaved.overflow,
      ...(cursor ? { cursor } : {}),
    };
    for (const [path, removedAt] of Object.entries(unsaved.del)) {
      delete merged.put[path];
      merged.del[path] = removedAt;
    }
    for (const [path, updated] of Object.entries(unsaved.put)) {
      delete merged.del[path];
      merged.put[path] = updated;
    }
    this.#carried.set(listener, merged);
  }

  /** The listener's unsaved mark, handed to the caller (once). */
  take(listener: string): UnsavedMark | undefined {
    const carried = this.#carried.get(listener);
    this.#carried.delete(listener);
    return carried;
  }

  /** Listeners with an unsaved mark kept here. */
  get size(): number {
    return this.#carried.size;
  }

  /** Calls `retry` after each lease renewal until the returned function is called. */
  onRenewal(retry: () => void): () => void {
    this.#retries.add(retry);
    return () => this.#retries.delete(retry);
  }

  /** The manager renewed the user's lease. */
  renewed(): void {
    for (const retry of this.#retries) retry();
  }

  /** The user left this instance (or the fleet): nothing to carry. */
  clear(): void {
    this.#carried.clear();
  }
}

/**
 * The {@link import('./firestore/watched-query').WatchedQueryOptions} that carry a listener over
 * on this instance, with what it `replayed` from the user's stream (see {@link replayCarried})
 * merged in as the newer part.
 */
export function carryOptions(
  carry: CarryOver | undefined,
  name: string,
  replayed?: UnsavedMark,
): {
  carried?: UnsavedMark;
  onUnsaved?: (unsaved: UnsavedMark) => void;
  retrySaves?: (retry: () => void) => () => void;
} {
  if (!carry) return replayed ? { carried: replayed } : {};
  if (replayed) carry.keep(name, replayed);
  const carried = carry.take(name);
  return {
    ...(carried ? { carried } : {}),
    onUnsaved: (unsaved) => carry.keep(name, unsaved),
    retrySaves: (retry) => carry.onRenewal(retry),
  };
}
