import { type AppEvent, AppEventSchema, RpcErrorCode, toFrameIssues, UserIdSchema } from '@livebus/protocol';
import { PublishError } from '@livebus/publisher';
import { z } from 'zod';
import { InvalidEventError } from '../../fleet/bus/invalid-event-error';
import type { HttpDeps, Routes } from './http-deps';
import { HttpError, type RequestGuards, readJson, send } from './http-io';

const OnePublicationSchema = z.strictObject({ user_id: UserIdSchema, event: AppEventSchema });
/** Largest batch one `POST /publish` may carry. */
const MAX_BATCH = 1_000;
const PublishBatchSchema = z.strictObject({ events: z.array(OnePublicationSchema).min(1).max(MAX_BATCH) });
/** One schema per shape, picked by the `events` key, so that issues name the exact path. */
const publishBodySchemaFor = (body: unknown) =>
  body !== null && typeof body === 'object' && 'events' in body ? PublishBatchSchema : OnePublicationSchema;

const queued = Symbol('queued');

/** The stored events, or `queued` when they are still waiting for Redis after `afterMs` (absent: no wait is cut short). */
function storedOrQueued<T>(stored: Promise<T>, afterMs: number | undefined): Promise<T | typeof queued> {
  if (afterMs === undefined) return stored;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      // Whatever happens to them now is counted and logged by the outbox (`publish_outbox`).
      stored.catch(() => {});
      resolve(queued);
    }, afterMs);
    stored.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

/** `POST /publish`: one event or a batch, with the admin token or a service token. */
export function publishRoutes(deps: HttpDeps, guards: RequestGuards): Routes {
  const { config } = deps;
  return {
    'POST /publish': async (req, res) => {
      // Like the other admin endpoints, open when no ADMIN_TOKEN is set (never in production).
      if (!guards.isAdmin(req)) {
        const principal = await guards.principalOf(req);
        if (!principal.service)
          throw new HttpError(403, RpcErrorCode.Forbidden, 'publishing needs the admin token or a service token');
      }
      const raw = await readJson(req, config.maxPayloadBytes);
      const body = publishBodySchemaFor(raw).safeParse(raw);
      if (!body.success) {
        throw new HttpError(
          400,
          'invalid_event',
          `body must be { user_id, event: { event, data } } or { events: [ { user_id, event }, ... ] } (at most ${MAX_BATCH})`,
          { issues: toFrameIssues(body.error) },
        );
      }
      // A publish that outlives its retries waits in the outbox until Redis returns: the
      // caller hears 202 `queued` then rather than holding the request through the outage.
      // With the outbox off (PUBLISH_OUTBOX_MAX_EVENTS=0) nothing waits: the caller hears the
      // outcome, stored or 503 `redis_unavailable`, once the retries are over.
      const queuedAfterMs =
        config.publishOutboxMaxEvents > 0 ? config.publishRetryDelaysMs.reduce((a, b) => a + b, 0) + 250 : undefined;
      try {
        if ('events' in body.data) {
          const items = body.data.events.map((e) => ({ userId: e.user_id, event: e.event as AppEvent }));
          const stored = await storedOrQueued(deps.publishMany(items), queuedAfterMs);
          if (stored === queued) send(res, 202, { accepted: true, queued: true });
          else send(res, 202, { accepted: true, cursors: stored.map((e) => e.cursor) });
        } else {
          const stored = await storedOrQueued(
            deps.publish(body.data.user_id, body.data.event as AppEvent),
            queuedAfterMs,
          );
          if (stored === queued) send(res, 202, { accepted: true, queued: true });
          else send(res, 202, { accepted: true, cursor: stored.cursor });
        }
      } catch (error) {
        if (error instanceof InvalidEventError) {
          throw new HttpError(400, 'invalid_event', error.message, { issues: error.issues });
        }
        // Refused without being queued (outbox full): the caller must know the event is not coming.
        // `maybe_stored`: an attempt went out and got no answer, so Redis may have stored it: a
        // caller that publishes it again may store it twice.
        if (error instanceof PublishError) {
          throw new HttpError(503, RpcErrorCode.Unavailable, error.message, {
            reason: error.code,
            ...(error.maybeStored ? { maybe_stored: true } : {}),
          });
        }
        throw error;
      }
    },
  };
}
