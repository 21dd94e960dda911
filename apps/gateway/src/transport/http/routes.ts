import type { IncomingMessage, RequestListener } from 'node:http';
import { isTransientRedisError } from '@livebus/publisher';
import { adminRoutes } from './admin-routes';
import { createDashboardRoutes } from './dashboard';
import { healthRoutes } from './health';
import type { HttpDeps, Routes } from './http-deps';
import { HttpError, requestGuards, send } from './http-io';
import { publishRoutes } from './publish-routes';
import { rpcRoutes } from './rpc-routes';

/** The gateway's HTTP endpoints (everything but the /ws upgrade), one route group per file. */
export function createHttpHandler(deps: HttpDeps): RequestListener {
  const guards = requestGuards(deps);
  const routes: Routes = {
    ...createDashboardRoutes(deps, guards.requireAdmin),
    ...healthRoutes(deps),
    ...adminRoutes(deps, guards),
    ...rpcRoutes(deps, guards),
    ...publishRoutes(deps, guards),
  };

  return (req, res) => {
    // Last resort: whatever a route throws answers only this request, and the process keeps serving.
    const fail = (error: unknown) => {
      if (error instanceof HttpError) {
        if (!res.headersSent) send(res, error.status, error.body);
        return;
      }
      // The caller went away mid-request (closed its connection while sending the body): nothing
      // to answer and nothing broken here.
      if (req.destroyed && isClientGone(error)) {
        deps.logger.debug('http_client_gone', { method: req.method, path: pathOf(req) });
        return;
      }
      // Redis away or not answering (a read of an admin endpoint): the caller may try again.
      if (isTransientRedisError(error)) {
        deps.logger.warn('http_unavailable', { method: req.method, path: pathOf(req), error: String(error) });
        if (res.headersSent) res.destroy();
        else send(res, 503, { error: { code: 'unavailable', message: 'Redis cannot be reached; try again' } });
        return;
      }
      deps.logger.error('http_handler_error', { method: req.method, path: pathOf(req), error: String(error) });
      if (res.headersSent) res.destroy();
      else send(res, 500, { error: { code: 'internal', message: 'internal error' } });
    };
    // A draining gateway answers, then closes the connection: no next request on it, and the
    // shutdown need not wait out a keep-alive connection that went idle after its answer. Asked
    // when the answer's head is written, so that requests in flight when draining began close too.
    const writeHead = res.writeHead;
    res.writeHead = function (this: typeof res, ...args: Parameters<typeof res.writeHead>) {
      if (deps.isDraining()) this.shouldKeepAlive = false;
      return writeHead.apply(this, args);
    } as typeof res.writeHead;
    try {
      const path = pathOf(req);
      const route = routes[`${req.method} ${path}`];
      if (!route) {
        // A path served with other methods: 405 naming them (RFC 9110), not a 404 that reads as a wrong URL.
        const allowed = Object.keys(routes)
          .filter((key) => key.slice(key.indexOf(' ') + 1) === path)
          .map((key) => key.slice(0, key.indexOf(' ')));
        if (allowed.length > 0) {
          res.setHeader('allow', allowed.join(', '));
          send(res, 405, {
            error: { code: 'method_not_allowed', message: `${req.method} ${path}: use ${allowed.join(' or ')}` },
          });
          return;
        }
        send(res, 404, { error: { code: 'not_found', message: `no route ${req.method} ${path}` } });
        return;
      }
      Promise.resolve()
        .then(() => route(req, res))
        .catch(fail);
    } catch (error) {
      fail(error);
    }
  };
}

/** Node's error for a request whose connection closed before its body was read. */
function isClientGone(error: unknown): boolean {
  const e = error as { code?: unknown; message?: unknown } | undefined;
  return e?.code === 'ECONNRESET' || e?.message === 'aborted';
}

function pathOf(req: IncomingMessage): string {
  return (req.url ?? '/').split('?')[0] ?? '/';
}
