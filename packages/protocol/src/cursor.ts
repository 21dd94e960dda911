import type { Cursor } from './common';

/** A cursor taken apart: the stream's epoch and the event's offset in it. */
export interface StreamPosition {
  epoch: string;
  /** 0 is the position before the first event of the epoch. */
  offset: number;
}

/** Builds the wire form of a position. */
export function formatCursor(epoch: string, offset: number): Cursor {
  return `${epoch}:${offset}`;
}

/** Takes a cursor apart; `undefined` when it is not one. */
export function parseCursor(cursor: string): StreamPosition | undefined {
  const at = cursor.lastIndexOf(':');
  if (at <= 0) return undefined;
  const offset = Number(cursor.slice(at + 1));
  if (!Number.isSafeInteger(offset) || offset < 0) return undefined;
  return { epoch: cursor.slice(0, at), offset };
}

/**
 * Orders two cursors of one user's stream: negative when `a` comes first, 0 when
 * equal, positive when `a` comes later. `undefined` when they belong to
 * different epochs, which cannot be ordered: the stream was reset in between.
 */
export function compareCursors(a: string, b: string): number | undefined {
  const x = parseCursor(a);
  const y = parseCursor(b);
  if (!x || !y || x.epoch !== y.epoch) return undefined;
  return x.offset - y.offset;
}
