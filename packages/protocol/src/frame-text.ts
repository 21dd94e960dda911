// Frame text handling shared by every parser (the zod-based ones and the zod-free client ones):
// size and encoding checks, then JSON parsing behind a depth check. No zod here.
import { protocolDefaults } from './defaults';
import { FrameError, type FrameIssue } from './errors';
import { exceedsJsonDepth } from './json-depth';

/** Outcome of a parse: the typed frame, or a {@link FrameError} saying what is wrong and where. */
export type ParseResult<T> = { ok: true; value: T } | { ok: false; error: FrameError };

/** Options for the parsers. */
export interface ParseOptions {
  /** Reject input longer than this many bytes before parsing it. @default 1_048_576 */
  maxBytes?: number;
  /** Reject input nesting arrays and objects deeper than this before parsing it. @default 64 */
  maxDepth?: number;
}

/** The message of a {@link FrameError} for a list of issues: the first one, and how many more. */
export function describeIssues(issues: readonly FrameIssue[]): string {
  const first = issues[0];
  if (!first) return 'invalid frame';
  const where = first.path === '' ? 'frame' : first.path;
  const more = issues.length > 1 ? ` (and ${issues.length - 1} more)` : '';
  return `invalid frame: ${where}: ${first.message}${more}`;
}

// Node has Buffer (fast, no copy); browsers count through TextEncoder.
const hasBuffer = typeof Buffer !== 'undefined';
const utf8Length = (text: string) =>
  hasBuffer ? Buffer.byteLength(text, 'utf8') : new TextEncoder().encode(text).length;

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

/** One decoder for every frame: with `fatal` and without `stream`, each decode starts afresh. */
let utf8Decoder: InstanceType<typeof TextDecoder> | undefined;

/** A frame's text, or why it has none (an error, not a result object: this runs for every frame). */
function decodeText(data: unknown, maxBytes: number): string | FrameError {
  if (typeof data === 'string') {
    // UTF-8 is never shorter than the UTF-16 length, so the cheap check runs first; UTF-8 is
    // at most 3 bytes per UTF-16 unit, so short strings skip the exact count.
    if (data.length > maxBytes || (data.length * 3 > maxBytes && utf8Length(data) > maxBytes)) {
      return new FrameError('too_large', `frame larger than ${maxBytes} bytes`);
    }
    return data;
  }
  let bytes: Uint8Array | undefined;
  if (data instanceof Uint8Array) bytes = data;
  else if (data instanceof ArrayBuffer) bytes = new Uint8Array(data);
  else if (Array.isArray(data) && data.every((d) => d instanceof Uint8Array)) bytes = concat(data);
  if (!bytes) return new FrameError('not_text', 'frame must be a UTF-8 JSON text');
  if (bytes.byteLength > maxBytes) return new FrameError('too_large', `frame larger than ${maxBytes} bytes`);
  try {
    utf8Decoder ??= new TextDecoder('utf-8', { fatal: true });
    return utf8Decoder.decode(bytes);
  } catch (cause) {
    return new FrameError('not_text', 'frame is not valid UTF-8', [], { cause });
  }
}

/**
 * Parses JSON text after checking its nesting, so that neither JSON.parse nor a
 * recursive validator ever sees hostile depth. Never throws: for HTTP bodies and
 * any other JSON a peer sends, as well as frames.
 */
export function parseJsonText(text: string, maxDepth: number = protocolDefaults.maxJsonDepth): ParseResult<unknown> {
  return parseJson(text, maxDepth, false);
}

// A key that JSON.parse decodes to "__proto__" is spelled so in the text, or has a \u escape in it.
const mayHaveProtoKey = (text: string) => text.includes('__proto__') || text.includes('\\u');
const dropProtoKeys = (key: string, value: unknown) => (key === '__proto__' ? undefined : value);

function parseJson(text: string, maxDepth: number, dropProto: boolean): ParseResult<unknown> {
  if (exceedsJsonDepth(text, maxDepth)) {
    return { ok: false, error: new FrameError('too_deep', `JSON nested deeper than ${maxDepth} levels`) };
  }
  try {
    // The reviver is slow: it runs only for the rare text that may have such a key.
    return { ok: true, value: dropProto && mayHaveProtoKey(text) ? JSON.parse(text, dropProtoKeys) : JSON.parse(text) };
  } catch (cause) {
    return { ok: false, error: new FrameError('bad_json', 'frame is not valid JSON', [], { cause }) };
  }
}

/**
 * Decodes and parses a frame's text: a JSON value, still to be validated. Never throws. With
 * `dropProtoKeys`, "__proto__" keys are dropped while parsing (for validators that do not copy).
 */
export function decodeFrame(data: unknown, options: ParseOptions = {}, dropProtoKeys = false): ParseResult<unknown> {
  const text = decodeText(data, options.maxBytes ?? protocolDefaults.maxFrameBytes);
  if (typeof text !== 'string') return { ok: false, error: text };
  return parseJson(text, options.maxDepth ?? protocolDefaults.maxJsonDepth, dropProtoKeys);
}
