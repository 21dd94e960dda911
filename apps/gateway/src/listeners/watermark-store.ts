import type { Cursor } from '@livebus/protocol';
import type { LeaseHolder } from '../fleet/lease/lease';

/** Per document path, the update time (a mark) of the version delivered as present. */
export type DeliveredDocs = Record<string, string>;

/** What a snapshot changed in a listener's {@link DeliveredDocs}. */
export interface DeliveredDelta {
  /** Paths delivered as present (added or modified) -> their update time. */
  put: DeliveredDocs;
  /** Paths delivered as removed. */
  del: string[];
  /** The listener tracks no more paths (its bound was reached); the marks alone deduplicate. */
  overflow?: boolean;
}

/** What a new owner of a user's listeners resumes from, per listener name. */
export interface ListenerResume {
  /** Listener name -> watermark (empty when none). */
  marks: Record<string, string>;
  /** Listener name -> the documents it delivered as present (absent: none tracked). */
  docs: Record<string, DeliveredDocs>;
  /** Listener names whose delivered set overflowed its bound. */
  overflowed: string[];
  /**
   * Listener name -> cursor, in the user's stream, of the last event its mark covers
   * (absent: none published yet, or stored before cursors were): a new owner reads the
   * stream after it for what a dead owner published but never stored.
   */
  cursors: Record<string, Cursor>;
}

/**
 * Port: per user and listener, where the listener stands: the read time of the
 * last snapshot whose changes were all published (nanoseconds since the epoch, as
 * a decimal string), and the documents it delivered as present with their update
 * times. A new owner of the user's listeners drops every version it already
 * delivered, and reports as `removed` the documents that vanished while no listener
 * ran, so a takeover re-delivers nothing and loses no deletion. Writes are fenced by
 * the lease: an owner that lost the lease (paused, partitioned) can no longer move them.
 */
export interface WatermarkStore {
  /** Where the user's listeners stand (all empty when nothing is stored). */
  get(userId: string): Promise<ListenerResume>;
  /**
   * Stores a mark, the snapshot's changes to the delivered set and the cursor of the
   * last event the mark covers (undefined: the stored one stays); false (nothing
   * written) when `fence` no longer holds the user's lease. No mark (undefined): the
   * stored one stays (none: the listener's next first snapshot is still `initial`); a
   * listener that told a failure before any change stores only the cursor, where a new
   * owner reads back what the user was told.
   */
  set(
    userId: string,
    listener: string,
    mark: string | undefined,
    fence: LeaseHolder,
    delta?: DeliveredDelta,
    cursor?: Cursor,
  ): Promise<boolean>;
  /** Forgets one listener (a workflow watch released for good). */
  forget(userId: string, listener: string): Promise<void>;
  /** Forgets the user's marks: their next attach starts with a full initial snapshot. */
  clear(userId: string): Promise<void>;
}

/** A Firestore timestamp as a watermark string (nanoseconds since the epoch). */
export function markOf(t: { seconds: number; nanoseconds: number }): string {
  return (BigInt(t.seconds) * 1_000_000_000n + BigInt(t.nanoseconds)).toString();
}

/** Whether a timestamp is strictly after a mark (no mark: everything is). */
export function isAfter(t: { seconds: number; nanoseconds: number }, mark: string | undefined): boolean {
  return mark === undefined || BigInt(markOf(t)) > BigInt(mark);
}

/**
 * An event's `update_time` (RFC 3339, as {@link import('./firestore/firestore-json').timestampText}
 * writes it) as the mark {@link markOf} gives the timestamp it was written from;
 * undefined when it is not such a text.
 */
export function markOfText(text: string): string | undefined {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z$/.exec(text);
  const ms = m ? Date.parse(`${m[1]}Z`) : Number.NaN;
  if (!m || Number.isNaN(ms)) return undefined;
  return markOf({ seconds: ms / 1000, nanoseconds: Number((m[2] ?? '').padEnd(9, '0')) });
}
