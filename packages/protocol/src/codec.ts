import type { z } from 'zod';
import { protocolDefaults } from './defaults';
import { FrameError, type FrameIssue } from './errors';
import { type ClientFrame, ClientFrameSchema, type Frame, type ServerFrame, ServerFrameSchema } from './frames';
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

/** Turns zod issues into `{ path, message }` pairs with dotted paths. */
export function toFrameIssues(error: z.ZodError): FrameIssue[] {
  return error.issues.map((issue) => ({ path: issue.path.map(String).join('.'), message: issue.message }));
}

function describe(issues: readonly FrameIssue[]): string {
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

function decodeText(data: unknown, maxBytes: number): ParseResult<string> {
  if (typeof data === 'string') {
    // UTF-8 is never shorter than the UTF-16 length, so the cheap check runs first; UTF-8 is
    // at most 3 bytes per UTF-16 unit, so short strings skip the exact count.
    if (data.length > maxBytes || (data.length * 3 > maxBytes && utf8Length(data) > maxBytes)) {
      return { ok: false, error: new FrameError('too_large', `frame larger than ${maxBytes} bytes`) };
    }
    return { ok: true, value: data };
  }
  let bytes: Uint8Array | undefined;
  if (data instanceof Uint8Array) bytes = data;
  else if (data instanceof ArrayBuffer) bytes = new Uint8Array(data);
  else if (Array.isArray(data) && data.every((d) => d instanceof Uint8Array)) bytes = concat(data);
  if (!bytes) return { ok: false, error: new FrameError('not_text', 'frame must be a UTF-8 JSON text') };
  if (bytes.byteLength > maxBytes) {
    return { ok: false, error: new FrameError('too_large', `frame larger than ${maxBytes} bytes`) };
  }
  try {
    return { ok: true, value: new TextDecoder('utf-8', { fatal: true }).decode(bytes) };
  } catch (cause) {
    return { ok: false, error: new FrameError('not_text', 'frame is not valid UTF-8', [], { cause }) };
  }
}

/**
 * Parses JSON text after checking its nesting, so that neither JSON.parse nor a
 * recursive validator ever sees hostile depth. Never throws: for HTTP bodies and
 * any other JSON a peer sends, as well as frames.
 */
export function parseJsonText(text: string, maxDepth: number = protocolDefaults.maxJsonDepth): ParseResult<unknown> {
  if (exceedsJsonDepth(text, maxDepth)) {
    return { ok: false, error: new FrameError('too_deep', `JSON nested deeper than ${maxDepth} levels`) };
  }
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (cause) {
    return { ok: false, error: new FrameError('bad_json', 'frame is not valid JSON', [], { cause }) };
  }
}

/**
 * Validates a parsed value against a schema; never throws. The depth check before
 * it bounds zod's recursion, and the catch is the last resort should a schema
 * throw anyway: a peer's input must never become an exception.
 */
export function validateWith<T>(schema: z.ZodType<T>, value: unknown): ParseResult<T> {
  let parsed: ReturnType<typeof schema.safeParse>;
  try {
    parsed = schema.safeParse(value);
  } catch (cause) {
    return { ok: false, error: new FrameError('invalid', 'frame could not be validated', [], { cause }) };
  }
  if (parsed.success) return { ok: true, value: parsed.data };
  const issues = toFrameIssues(parsed.error);
  return { ok: false, error: new FrameError('invalid', describe(issues), issues) };
}

function parseWith<T>(schema: z.ZodType<T>, data: unknown, options: ParseOptions): ParseResult<T> {
  const text = decodeText(data, options.maxBytes ?? protocolDefaults.maxFrameBytes);
  if (!text.ok) return text;
  const json = parseJsonText(text.value, options.maxDepth);
  if (!json.ok) return json;
  return validateWith(schema, json.value);
}

/**
 * Parses a frame received by a server. Accepts a string, a Buffer / Uint8Array,
 * an ArrayBuffer or a list of Buffers (what `ws` hands over); never throws.
 */
export function parseClientFrame(data: unknown, options: ParseOptions = {}): ParseResult<ClientFrame> {
  return parseWith(ClientFrameSchema, data, options);
}

/** Parses a frame received by a client. Never throws. */
export function parseServerFrame(data: unknown, options: ParseOptions = {}): ParseResult<ServerFrame> {
  return parseWith(ServerFrameSchema, data, options);
}

// `ping` and `pong` are shared by both directions; every other type belongs to one.
const CLIENT_ONLY_TYPES: ReadonlySet<string> = new Set(['hello', 'rpc', 'auth']);

/**
 * Validates a frame against the schema of its direction and serialises it to
 * JSON text. Throws a {@link FrameError} when the frame is invalid: sending a
 * malformed frame is a bug on the sending side, never something to put on the wire.
 */
export function serializeFrame(frame: Frame): string {
  const schema: z.ZodType<Frame> = CLIENT_ONLY_TYPES.has(frame.type) ? ClientFrameSchema : ServerFrameSchema;
  const checked = validateWith(schema, frame);
  if (!checked.ok) throw checked.error;
  return JSON.stringify(checked.value);
}
