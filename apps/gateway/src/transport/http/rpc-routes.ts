import { toFrameIssues } from '@livebus/protocol';
import { z } from 'zod';
import { httpStatusOf, toRpcError } from '../../rpc/rpc-error';
import type { HttpDeps, Routes } from './http-deps';
import { HttpError, type RequestGuards, readJson, send } from './http-io';

const RpcBodySchema = z.strictObject({ method: z.string().min(1), args: z.array(z.json()).default([]) });

/** `POST /rpc`: one call of the RPC methods over HTTP, as the caller's bearer token allows. */
export function rpcRoutes(deps: HttpDeps, guards: RequestGuards): Routes {
  return {
    'POST /rpc': async (req, res) => {
      const principal = await guards.principalOf(req);
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
