import type { z } from 'zod';
import { FrameError, type FrameIssue } from './errors';
import { decodeFrame, describeIssues, type ParseOptions, type ParseResult } from './frame-text';
import { type ClientFrame, ClientFrameSchema, type Frame, type ServerFrame, ServerFrameSchema } from './frames';
import { isHelloFrame } from './hello-check';

export { type ParseOptions, type ParseResult, parseJsonText } from './frame-text';

/** Turns zod issues into `{ path, message }` pairs with dotted paths. */
export function toFrameIssues(error: z.ZodError): FrameIssue[] {
  return error.issues.map((issue) => ({ path: issue.path.map(String).join('.'), message: issue.message }));
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
  return { ok: false, error: new FrameError('invalid', describeIssues(issues), issues) };
}

function parseWith<T>(schema: z.ZodType<T>, data: unknown, options: ParseOptions): ParseResult<T> {
  const json = decodeFrame(data, options);
  if (!json.ok) return json;
  return validateWith(schema, json.value);
}

/**
 * Parses a frame received by a server. Accepts a string, a Buffer / Uint8Array,
 * an ArrayBuffer or a list of Buffers (what `ws` hands over); never throws.
 */
export function parseClientFrame(data: unknown, options: ParseOptions = {}): ParseResult<ClientFrame> {
  const json = decodeFrame(data, options);
  if (!json.ok) return json;
  // The hello (every connection's first frame) is checked by hand, with zod's verdicts
  // (hello-check.ts); zod checks every other frame, and refuses a bad hello with its issues.
  if (isHelloFrame(json.value)) return json as ParseResult<ClientFrame>;
  return validateWith(ClientFrameSchema, json.value);
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
