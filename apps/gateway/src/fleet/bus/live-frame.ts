import { type Cursor, formatCursor, isEventType } from '@livebus/protocol';
import type { LiveEvent } from './event-bus';

/**
 * A live event as the Redis bus hands it on: its position taken apart and the frame as
 * received (bytes; the text is decoded only when read). The cursor's text is made only
 * when read (logs, tests): fan-out compares the numbers, and a string per event would be
 * garbage at once.
 */
export class LiveFrame implements LiveEvent {
  readonly epoch: string;
  readonly offset: number;
  readonly bytes: Buffer | undefined;
  #text: string | undefined;

  /** `text`, or `bytes` (the text is then decoded when first read). */
  constructor(epoch: string, offset: number, text: string | undefined, bytes?: Buffer) {
    this.epoch = epoch;
    this.offset = offset;
    this.#text = text;
    this.bytes = bytes;
  }

  get text(): string {
    this.#text ??= (this.bytes as Buffer).toString();
    return this.#text;
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

/** {@link offsetInEpoch} of a frame as received (UTF-8 bytes): the same checks, byte by byte. */
export function offsetInEpochBytes(bytes: Buffer, epoch: string): number {
  const n = bytes.length;
  const start = PREFIX.length;
  const colon = start + epoch.length;
  if (epoch.length === 0 || epoch.length > MAX_EPOCH_LENGTH || epoch.includes('\\')) return -1;
  if (n <= colon || !bytesAt(bytes, 0, PREFIX) || !bytesAt(bytes, start, epoch) || bytes[colon] !== COLON) return -1;
  let offset = 0;
  let i = colon + 1;
  for (let c = bytes[i] ?? 0; c >= ZERO && c <= NINE; c = bytes[++i] ?? 0) offset = offset * 10 + (c - ZERO);
  const digits = i - colon - 1;
  if (digits === 0 || digits > MAX_OFFSET_DIGITS || bytes[i] !== QUOTE) return -1;
  if (!bytesAt(bytes, i + 1, TS)) return -1;
  i += 1 + TS.length;
  const tsStart = i;
  for (let c = bytes[i] ?? 0; c >= ZERO && c <= NINE; c = bytes[++i] ?? 0);
  if (i === tsStart || !bytesAt(bytes, i, EVENT)) return -1;
  const nameStart = i + EVENT.length;
  if (knownType === '' || !bytesAt(bytes, nameStart, knownType) || bytes[nameStart + knownType.length] !== QUOTE) {
    const nameEnd = bytes.indexOf(QUOTE, nameStart);
    const name = nameEnd < 0 ? '' : bytes.toString('utf8', nameStart, nameEnd);
    if (!isEventType(name)) return -1;
    knownType = name;
  }
  if (bytes[n - 1] !== 125 /* } */) return -1;
  return offset;
}

/** Whether `bytes` holds `ascii` at `at`; false too when `ascii` is not ASCII (its UTF-8 is other bytes). */
function bytesAt(bytes: Buffer, at: number, ascii: string): boolean {
  const len = ascii.length;
  if (at + len > bytes.length) return false;
  for (let k = 0; k < len; k++) {
    const c = ascii.charCodeAt(k);
    if (c > 127 || bytes[at + k] !== c) return false;
  }
  return true;
}

/** What the memory behind a frame's bytes may hold beyond them for the frame to go on as a view (see {@link ownBytes}). */
const MAX_EXTRA_BYTES = 1024;

/**
 * `bytes` as they are, or a copy in an allocation of their own when they are a view of a
 * much larger one. A frame the kernel does not take from a socket at once stays queued in
 * it, and with it the whole allocation its bytes are a view of: a socket read of up to
 * 64 KiB that carried many frames (a busy moment), or redis-parser's shared pool (a frame
 * that came in several reads); `bufferedAmount` and MAX_BUFFERED_BYTES count only the
 * frame. So a view goes on only when what it keeps beyond the frame is at most the frame's
 * own size or 1 KiB; else the frame is copied, once per event (a copy costs less than
 * decoding the text and every socket encoding it again). Nearly every frame of a quiet
 * stream is a whole read of its own, which Node allocates at its size: no copy.
 */
export function ownBytes(bytes: Buffer): Buffer {
  const extra = bytes.buffer.byteLength - bytes.length;
  if (extra <= bytes.length || extra <= MAX_EXTRA_BYTES) return bytes;
  // Not Buffer.from or allocUnsafe: they put a small copy in Node's shared 8 KiB pool,
  // which a queued frame would keep the same way.
  const own = Buffer.allocUnsafeSlow(bytes.length);
  bytes.copy(own);
  return own;
}
