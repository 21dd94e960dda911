/**
 * `@livebus/protocol/client`: what a client needs at run time, without zod. Frames are checked
 * against the JSON Schemas generated from the zod schemas (`wire-schemas.json`, kept in step by
 * a test), by a small checker that follows zod's rules; the types are the zod-inferred ones.
 * The browser build of `@livebus/bus-consumer` uses it; servers use the zod-based
 * `parseClientFrame` / `serializeFrame` of the package root.
 */
import { FrameError } from '../errors';
import { decodeFrame, describeIssues, type ParseOptions, type ParseResult, parseJsonText } from '../frame-text';
import type { ClientFrame, ServerFrame } from '../frames';
import { isHelloFrame } from '../hello-check';
import type { RpcMethod, RpcResult } from '../methods';
import { isWelcomeFrame } from '../welcome-check';
import { checkJson, isPlainObject, type JsonSchema } from './check';
import schemas from './wire-schemas.json';

export * from '../close-codes';
export type { Cursor, JsonValue } from '../common';
export * from '../cursor';
export * from '../defaults';
export * from '../errors';
export type { EventData, EventType } from '../events';
export type * from '../frames';
export { isCursor, isSessionId, isUserId } from '../hello-check';
export type { RpcMethod, RpcParams, RpcResult } from '../methods';
export * from '../upgrade-hello';
export * from '../version';
export { checkJson, type JsonSchema, KNOWN_KEYWORDS } from './check';
export { type ParseOptions, type ParseResult, parseJsonText };

const { serverFrame, clientFrame, rpcResults } = schemas as unknown as {
  serverFrame: JsonSchema;
  clientFrame: JsonSchema;
  rpcResults: Record<string, JsonSchema>;
};
const rpcResultSchemas = new Map(Object.entries(rpcResults));

/** Checks a value against a schema; never throws (a value too deep for the stack is an issue too). */
function checkWith<T>(schema: JsonSchema, value: unknown, message?: string): ParseResult<T> {
  let issue: ReturnType<typeof checkJson>;
  try {
    issue = checkJson(schema, value);
  } catch (cause) {
    return { ok: false, error: new FrameError('invalid', 'frame could not be validated', [], { cause }) };
  }
  if (!issue) return { ok: true, value: value as T };
  return { ok: false, error: new FrameError('invalid', message ?? describeIssues([issue]), [issue]) };
}

/**
 * Parses a frame received by a client, like the root's `parseServerFrame` (same limits, same
 * result type): accepts a string, a Uint8Array, an ArrayBuffer or a list of Uint8Arrays; never
 * throws. "__proto__" keys are dropped, so they never reach an application's objects.
 */
export function parseServerFrame(data: unknown, options: ParseOptions = {}): ParseResult<ServerFrame> {
  const json = decodeFrame(data, options, true);
  if (!json.ok) return json;
  // The welcome (once per connection) by a hand-written check that accepts exactly what the
  // schema accepts (welcome-check.test.ts holds it to zod's verdicts); anything it does not
  // accept gets the checker's verdict and message.
  // (A value JSON.parse made: objects in it are plain.)
  if (isWelcomeFrame(json.value)) return json as ParseResult<ServerFrame>;
  return checkWith<ServerFrame>(serverFrame, json.value);
}

/** Checks a frame a client is about to send; never throws. */
export function checkClientFrame(frame: unknown): ParseResult<ClientFrame> {
  // The hello (once per connection, and the client's options at construction) by the
  // hand-written check the gateway uses too: it accepts exactly what the schema accepts (both
  // are held to zod's verdicts by tests). Anything it does not accept gets the checker's verdict
  // and message.
  if (isPlainObject(frame) && isHelloFrame(frame)) return { ok: true, value: frame };
  return checkWith<ClientFrame>(clientFrame, frame);
}

/**
 * Checks a client frame and serialises it to JSON text. Throws a {@link FrameError} when the
 * frame is invalid: a malformed frame is a bug on the sending side, never something to send.
 */
export function serializeClientFrame(frame: ClientFrame): string {
  const checked = checkClientFrame(frame);
  if (!checked.ok) throw checked.error;
  return JSON.stringify(frame);
}

/** Checks an RPC result against its method's result schema, like the root's `validateRpcResult`. */
export function validateRpcResult<M extends RpcMethod>(method: M, result: unknown): ParseResult<RpcResult<M>> {
  const schema = rpcResultSchemas.get(method);
  if (schema === undefined) return { ok: false, error: new FrameError('invalid', `unknown method ${method}`) };
  return checkWith<RpcResult<M>>(schema, result, `invalid result of ${method}`);
}
