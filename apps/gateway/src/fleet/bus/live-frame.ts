import { type Cursor, formatCursor, isEventType } from '@livebus/protocol';
import type { LiveEvent } from './event-bus';

/**
 * A live event as the Redis bus hands it on: its position taken apart and the frame's
 * text as received. The cursor's text is made only when read (logs, tests): fan-out
 * compares the numbers, and a string per event would be garbage at once.
 */
export class LiveFrame implements LiveEvent {
  readonly epoch: string;
  readonly offset: number;
  readonly text: string;

  constructor(epoch: string, offset: number, text: string) {
    this.epoch = epoch;
    this.offset = offset;
    this.text = text;
  }

  get cursor(): Cursor {
    return formatCursor(this.epoch, this.offset);
  }
}

// The stored frame's layout (packages/publisher stored-frame.ts, written by the append script):
//   {"type":"event","cursor":"<epoch>:<offset>","ts":<ms>,"event":"<type>",...}
const PREFIX = '{"type":"event","cursor":"';
const TS = ',"ts":';
const EVENT = ',"event":"';
const ZERO = 48;
const NINE = 57;
const COLON = 58;
const QUOTE = 34;
const MAX_OFFSET_DIGITS = 15;
/** As `readStoredFramePosition`: an epoch longer than this, or with a backslash, is not one it wrote. */
const MAX_EPOCH_LENGTH = 64;

/** The last event type found valid: nearly every frame of a run carries one of a few. */
let knownType = '';

/**
 * The offset of a stored frame whose cursor is of `epoch` (one already read and checked),
 * or -1: another epoch, or not a frame in the stored form. Checks what
 * `readStoredFramePosition` checks (prefix, digits, time, a known event type, the closing
 * brace) without making a string: the epoch is compared in place and the type against the
 * last one found valid. On -1 the caller reads the frame with `readStoredFramePosition`.
 */
export function offsetInEpoch(text: string, epoch: string): number {
  const start = PREFIX.length;
  const colon = start + epoch.length;
  if (epoch.length === 0 || epoch.length > MAX_EPOCH_LENGTH || epoch.includes('\\')) return -1;
  if (!text.startsWith(PREFIX) || !text.startsWith(epoch, start) || text.charCodeAt(colon) !== COLON) return -1;
  let offset = 0;
  let i = colon + 1;
  for (let c = text.charCodeAt(i); c >= ZERO && c <= NINE; c = text.charCodeAt(++i)) offset = offset * 10 + (c - ZERO);
  const digits = i - colon - 1;
  // The cursor ends at the first quote; anything else in it (another colon) is another epoch.
  if (digits === 0 || digits > MAX_OFFSET_DIGITS || text.charCodeAt(i) !== QUOTE) return -1;
  if (!text.startsWith(TS, i + 1)) return -1;
  i += 1 + TS.length;
  const tsStart = i;
  for (let c = text.charCodeAt(i); c >= ZERO && c <= NINE; c = text.charCodeAt(++i));
  if (i === tsStart || !text.startsWith(EVENT, i)) return -1;
  const nameStart = i + EVENT.length;
  if (
    knownType === '' ||
    !text.startsWith(knownType, nameStart) ||
    text.charCodeAt(nameStart + knownType.length) !== QUOTE
  ) {
    const nameEnd = text.indexOf('"', nameStart);
    const name = nameEnd < 0 ? '' : text.slice(nameStart, nameEnd);
    if (!isEventType(name)) return -1;
    knownType = name;
  }
  if (text.charCodeAt(text.length - 1) !== 125 /* } */) return -1;
  return offset;
}
