import type { ParseResult } from './codec';
import { toFrameIssues } from './codec';
import { FrameError } from './errors';
import { isRpcMethod, methodTable, type RpcMethod, type RpcParams, type RpcResult } from './methods';

/**
 * Checks positional arguments against a method's parameter tuple. The error's
 * issues name the argument index (`0`, `1.content`, ...).
 */
export function validateRpcArgs<M extends RpcMethod>(method: M, args: unknown): ParseResult<RpcParams<M>> {
  const parsed = methodTable[method].params.safeParse(args);
  if (parsed.success) return { ok: true, value: parsed.data as RpcParams<M> };
  const issues = toFrameIssues(parsed.error);
  const first = issues[0];
  const message = first
    ? `invalid params: ${first.path === '' ? 'args' : `args.${first.path}`}: ${first.message}`
    : 'invalid params';
  return { ok: false, error: new FrameError('invalid', message, issues) };
}

/** Checks a method's result before it is sent, so a server never answers with a shape its clients reject. */
export function validateRpcResult<M extends RpcMethod>(method: M, result: unknown): ParseResult<RpcResult<M>> {
  const parsed = methodTable[method].result.safeParse(result);
  if (parsed.success) return { ok: true, value: parsed.data as RpcResult<M> };
  const issues = toFrameIssues(parsed.error);
  return { ok: false, error: new FrameError('invalid', `invalid result of ${method}`, issues) };
}

export { isRpcMethod };
