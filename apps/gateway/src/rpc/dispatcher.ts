import {
  isRpcMethod,
  RpcErrorCode,
  type RpcMethod,
  type RpcParams,
  type RpcResult,
  validateRpcArgs,
  validateRpcResult,
} from '@livebus/protocol';
import type { Principal } from '../auth/authenticator';
import { RpcError, toRpcError } from './rpc-error';

/** Who is calling and over what. */
export interface RpcContext {
  principal: Principal;
  /** The WebSocket session the call came on; absent for POST /rpc. */
  sessionId?: string;
  transport: 'ws' | 'http';
}

/** Implementation of one method. */
export type RpcHandler<M extends RpcMethod> = (ctx: RpcContext, ...args: RpcParams<M>) => Promise<RpcResult<M>>;

/** One handler per method of the protocol's table; the compiler checks none is missing. */
export type RpcHandlers = { [M in RpcMethod]: RpcHandler<M> };

/** Outcome label for metrics. */
export type RpcOutcome = 'ok' | RpcErrorCode;

/** Options of {@link createDispatcher}. */
export interface DispatcherOptions {
  handlers: RpcHandlers;
  timeoutMs: number;
  /** Called after every call with its duration (metrics, logs). */
  observe?: (method: string, outcome: RpcOutcome, seconds: number, error?: RpcError) => void;
}

/** The one dispatcher behind both the WebSocket `rpc` frame and `POST /rpc`. */
export type Dispatch = (ctx: RpcContext, method: string, args: unknown) => Promise<unknown>;

/**
 * Validates the method and arguments against the protocol's method table,
 * runs the handler with a timeout, validates the result, and turns every
 * failure into a typed {@link RpcError}.
 */
export function createDispatcher(options: DispatcherOptions): Dispatch {
  const { handlers, timeoutMs, observe } = options;
  return async (ctx, method, args) => {
    const started = performance.now();
    const label = isRpcMethod(method) ? method : 'unknown';
    try {
      if (!isRpcMethod(method))
        throw new RpcError(RpcErrorCode.UnknownMethod, `unknown method ${method.slice(0, 128)}`);
      const params = validateRpcArgs(method, args);
      if (!params.ok) {
        throw new RpcError(RpcErrorCode.InvalidParams, params.error.message, { data: { issues: params.error.issues } });
      }
      const handler = handlers[method] as (ctx: RpcContext, ...a: unknown[]) => Promise<unknown>;
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new RpcError(RpcErrorCode.Timeout, `${method} timed out after ${timeoutMs} ms`)),
          timeoutMs,
        );
      });
      let result: unknown;
      try {
        result = await Promise.race([handler(ctx, ...(params.value as unknown[])), timeout]);
      } finally {
        clearTimeout(timer);
      }
      const checked = validateRpcResult(method, result);
      if (!checked.ok) throw new Error(`${method} produced an invalid result: ${checked.error.message}`);
      observe?.(label, 'ok', (performance.now() - started) / 1000);
      return checked.value;
    } catch (error) {
      const rpcError = toRpcError(error);
      observe?.(label, rpcError.code, (performance.now() - started) / 1000, rpcError);
      throw rpcError;
    }
  };
}
