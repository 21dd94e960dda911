import { isEventType } from '@livebus/protocol';

/**
 * Where a stored event frame stands in its user's stream, read from the frame's
 * text without parsing it.
 */
export interface StoredFramePosition {
  epoch: string;
  offset: number;
}

// `append_and_notify` writes every stored frame as
//   {"type":"event","cursor":"<epoch>:<offset>","ts":<ms>,"event":"<type>",...
// (see streamScripts in redis/stream-scripts.ts): a fixed prefix, then the cursor, the time and the type.
const PREFIX = '{"type":"event","cursor":"';
const TS = ',"ts":';
const EVENT = ',"event":"';
const ZERO = 48;
const NINE = 57;
/** 15 digits stay below Number.MAX_SAFE_INTEGER. */
const MAX_OFFSET_DIGITS = 15;
/** Epochs are 8 base64url characters (newEpoch); room for other writers' longer ones. */
const MAX_EPOCH_LENGTH = 64;

/**
 * Reads the cursor of a frame written by the `appendAndNotify` script from
 * its fixed prefix, and checks there that the rest looks like that script's
 * output (a time in ms, then a known event type): the position of a live event
 * for the cost of a few character comparisons, where `JSON.parse` would read
 * the whole frame. `undefined` for any text not in that exact form; the caller
 * then parses the text as JSON (the safe, slow way) or drops it.
 *
 * The frame's data was validated by the publisher before it was stored; this
 * does not validate it again.
 */
export function readStoredFramePosition(text: string): StoredFramePosition | undefined {
  if (!text.startsWith(PREFIX)) return undefined;
  const start = PREFIX.length;
  const end = text.indexOf('"', start);
  if (end < 0) return undefined;
  const colon = text.lastIndexOf(':', end);
  if (colon <= start || colon - start > MAX_EPOCH_LENGTH) return undefined;
  const epoch = text.slice(start, colon);
  // A backslash would mean an escaped character: not a cursor this function wrote.
  if (epoch.includes('\\')) return undefined;
  const digits = end - colon - 1;
  if (digits === 0 || digits > MAX_OFFSET_DIGITS) return undefined;
  let offset = 0;
  for (let i = colon + 1; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c < ZERO || c > NINE) return undefined;
    offset = offset * 10 + (c - ZERO);
  }
  // ,"ts":<digits>,"event":"<known type>"
  if (!text.startsWith(TS, end + 1)) return undefined;
  let i = end + 1 + TS.length;
  const tsStart = i;
  for (let c = text.charCodeAt(i); c >= ZERO && c <= NINE; c = text.charCodeAt(++i));
  if (i === tsStart || !text.startsWith(EVENT, i)) return undefined;
  const nameStart = i + EVENT.length;
  const nameEnd = text.indexOf('"', nameStart);
  if (nameEnd < 0 || !isEventType(text.slice(nameStart, nameEnd))) return undefined;
  // The frame must be a JSON object: a truncated text is not one.
  if (text.charCodeAt(text.length - 1) !== 125 /* } */) return undefined;
  return { epoch, offset };
}
