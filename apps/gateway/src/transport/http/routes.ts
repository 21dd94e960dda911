import type { IncomingMessage, RequestListener } from 'node:http';
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
      deps.logger.error('http_handler_error', { method: req.method, path: pathOf(req), error: String(error) });
      if (res.headersSent) res.destroy();
      else send(res, 500, { error: { code: 'internal', message: 'internal error' } });
    };
    try {
      const path = pathOf(req);
      const route = routes[`${req.method} ${path}`];
      if (!route) {
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

function pathOf(req: IncomingMessage): string {
  return (req.url ?? '/').split('?')[0] ?? '/';
}
