import { RpcErrorCode, toFrameIssues } from '@livebus/protocol';
import { z } from 'zod';
import { KeyedBuckets, TokenBucket } from '../../core/rate-limiter';
import { httpStatusOf, toRpcError } from '../../rpc/rpc-error';
import type { HttpDeps, Routes } from './http-deps';
import { HttpError, type RequestGuards, readJson, send } from './http-io';

const RpcBodySchema = z.strictObject({ method: z.string().min(1), args: z.array(z.json()).default([]) });

/**
 * `POST /rpc`: one call of the RPC methods over HTTP, as the caller's bearer token allows.
 * A user's calls are limited as a WebSocket connection's frames are (`RATE_LIMIT_FRAMES_PER_S`,
 * `RATE_LIMIT_BURST`), per user id on this instance: past it, `429` `rate_limited` with
 * `Retry-After: 1`, counted in `livebus_rpc_calls_total` with method `unknown` (the body of a
 * refused call is not read). A service (an app server calling for many users) is not limited.
 */
export function rpcRoutes(deps: HttpDeps, guards: RequestGuards): Routes {
  const { rateLimitFramesPerS, rateLimitBurst } = deps.config;
  const limits =
    rateLimitFramesPerS > 0 ? new KeyedBuckets(TokenBucket.policy(rateLimitFramesPerS, rateLimitBurst)) : undefined;
  return {
    'POST /rpc': async (req, res) => {
      const principal = await guards.principalOf(req);
      // Before the body is read: a call refused costs its token check only, whatever it sends.
      if (limits && !principal.service && !limits.take(principal.uid)) {
        deps.metrics.rpcCalls.inc({ method: 'unknown', outcome: RpcErrorCode.RateLimited });
        const error = { code: RpcErrorCode.RateLimited, message: 'too many calls; slow down' };
        res.setHeader('retry-after', '1');
        send(res, httpStatusOf(error.code), { error });
        return;
      }
      const body = RpcBodySchema.safeParse(await readJson(req, deps.config.maxPayloadBytes));
      if (!body.success)
        throw new HttpError(400, 'bad_request', 'body must be { method, args }', { issues: toFrameIssues(body.error) });
      try {
        const result = await deps.dispatch({ principal, transport: 'http' }, body.data.method, body.data.args);
        send(res, 200, { result });
      } catch (error) {
        const e = toRpcError(error);
        send(res, httpStatusOf(e.code), { error: e.toWire() });
      }
    },
  };
}
