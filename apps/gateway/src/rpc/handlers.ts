import { type AppEvent, type RegistrySession, RpcErrorCode, type UserRegistry } from '@livebus/protocol';
import { InvalidEventError, validatePublication } from '@livebus/publisher';
import {
  applyRegistryPatch,
  emptyUserRegistry,
  type RegistryStore,
  servicesProblem,
} from '../fleet/registry/registry-store';
import { storeLabel } from '../fleet/store-label';
import type { CompanyListeners } from '../listeners/company/company-listeners';
import { type ListenersManager, WorkflowWatchLimitError, WorkflowWatchOpenError } from '../listeners/listeners-manager';
import type { Logger } from '../logger';
import type { TaskService } from '../tasks/task-service';
import type { RpcContext, RpcHandlers } from './dispatcher';
import { checkLimitOption } from './limit-option';
import { RpcError } from './rpc-error';
import { storeFailure } from './store-failure';

/** What the handlers need from the gateway. */
export interface HandlerDeps {
  registry: RegistryStore;
  listeners: ListenersManager;
  logger: Logger;
  instanceId: string;
  unifiedRegistryEnabled: boolean;
  unifiedRegistryTtlS: number;
  registryDebug: boolean;
  /**
   * Most sessions `REGISTRY.register_user` keeps registered per user (REGISTRY_MAX_SESSIONS_PER_USER):
   * a new session id past it is refused with `rate_limited`. @default unbounded
   */
  registryMaxSessionsPerUser?: number;
  /** Whether the user has a live WebSocket session on this instance. */
  hasLiveSession: (userId: string) => boolean;
  /** Whether the user holds a session anywhere in the fleet (the registry's `online`). */
  isOnline: (userId: string) => Promise<boolean>;
  publish: (userId: string, event: AppEvent) => Promise<unknown>;
  /**
   * Told what `REGISTRY.register_user` stored for a session (`entry`), or that
   * `REGISTRY.unregister_session` took it back (undefined): a session of this instance keeps it,
   * and another instance holding the session is told (`tellHolder`, default true).
   */
  registered?: (userId: string, sessionId: string, entry: RegistrySession | undefined, tellHolder?: boolean) => void;
  /** `TASK.*`; undefined when tasks are off (TASKS_ENABLED=false). */
  tasks?: TaskService | undefined;
  /** Company listeners: `current_company_id` is checked (membership) and followed. Unset: neither. */
  companies?: Pick<CompanyListeners, 'refusal' | 'registryChanged'>;
  now?: () => Date;
}

/** A user acts on their own id; a service caller may act for anyone. */
function authorize(ctx: RpcContext, userId: string): void {
  if (!ctx.principal.service && ctx.principal.uid !== userId) {
    throw new RpcError(RpcErrorCode.Forbidden, 'you may only act on your own user_id');
  }
}

/** Runs a registry operation; Redis away or failing over is `unavailable` (callers may retry), a refusal `internal`. */
async function store<T>(op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (error) {
    throw storeFailure(error, 'the registry');
  }
}

/**
 * A user may only point their sessions at a company they are a member of (a service may set
 * any: the follow itself is still refused for a non-member). Says why when it refuses.
 */
async function checkCompany(deps: HandlerDeps, ctx: RpcContext, company: string | null | undefined): Promise<void> {
  if (!deps.companies || typeof company !== 'string' || ctx.principal.service) return;
  const refused = await deps.companies.refusal(ctx.principal, company);
  if (refused?.reason === 'invalid_company_id') {
    // `issues`, as every invalid_params carries (the path counted from the first argument: the patch).
    const issues = [{ path: '1.companies.current_company_id', message: refused.message }];
    throw new RpcError(RpcErrorCode.InvalidParams, refused.message, { data: { issues } });
  }
  // Logged with what Firestore said (rpc_error); the caller is told only to try again.
  if (refused?.reason === 'membership_error') {
    throw new RpcError(RpcErrorCode.Unavailable, refused.message, { cause: refused.cause });
  }
  if (refused) throw new RpcError(RpcErrorCode.Forbidden, refused.message);
}

/** The `registry.updated` event announcing a change; the document itself when it changed. */
function registryEvent(userId: string, reason: string, registry?: UserRegistry): AppEvent {
  return {
    event: 'registry.updated',
    data: registry ? { user_id: userId, reason, registry } : { user_id: userId, reason },
  };
}

/**
 * Refuses (`invalid_params`, before anything is stored) an updated document whose `services`
 * grew past the protocol's `registryLimits`, or whose `registry.updated` event the bus would refuse
 * (too large for a frame: a document stored before the bounds existed), so no stored update
 * leaves an event that cannot be published.
 */
function checkUpdated(userId: string, before: UserRegistry, updated: UserRegistry): void {
  const problem = servicesProblem(before.services, updated.services);
  if (problem) {
    throw new RpcError(RpcErrorCode.InvalidParams, problem, {
      data: { issues: [{ path: '1.services', message: problem }] },
    });
  }
  try {
    validatePublication(userId, registryEvent(userId, 'registry_updated', updated));
  } catch (error) {
    if (!(error instanceof InvalidEventError)) throw error;
    const message = `the updated registry could not be announced (${error.message}); remove services keys (null) first`;
    throw new RpcError(RpcErrorCode.InvalidParams, message, { data: { issues: [{ path: '1', message }] } });
  }
}

/**
 * Registers a session's entry, or refuses a new session id of a user who has
 * `registryMaxSessionsPerUser` registered already: nothing stored, `rate_limited` (a count the
 * caller reached, not a bad argument, as past TASK_MAX_OPEN_PER_USER) with
 * `data: { registered, max_registered }`.
 */
async function registerBounded(deps: HandlerDeps, userId: string, entry: RegistrySession): Promise<void> {
  const max = deps.registryMaxSessionsPerUser;
  if (await store(() => deps.registry.registerSession(userId, entry, max))) return;
  const limit = max ?? 0;
  // The count, for the answer: read after the refusal (at least the bound when the read fails).
  const sessions = await deps.registry.getSessions(userId).catch(() => []);
  const registered = Math.max(sessions.length, limit);
  const message =
    `user ${userId} has ${registered} registered sessions; the maximum is ${limit} (REGISTRY_MAX_SESSIONS_PER_USER): ` +
    'unregister one (REGISTRY.unregister_session) before registering another';
  throw new RpcError(RpcErrorCode.RateLimited, message, { data: { registered, max_registered: limit } });
}

/**
 * A WORKFLOW.watch that failed: `rate_limited` with `data: { watches, max_watches }` past the user's
 * bound of watches, else `unavailable` (retry): the listener could not attach, or could not open
 * within the wait (the kind of its failure named; Firestore's message only in the log).
 */
function watchFailure(error: unknown): RpcError {
  if (error instanceof WorkflowWatchLimitError) {
    return new RpcError(RpcErrorCode.RateLimited, error.message, {
      data: { watches: error.watches, max_watches: error.max },
    });
  }
  if (error instanceof WorkflowWatchOpenError) {
    return new RpcError(RpcErrorCode.Unavailable, `the workflow listener could not open (${error.kind}); retry later`, {
      cause: error,
    });
  }
  return new RpcError(RpcErrorCode.Unavailable, 'the workflow listener could not attach; retry later', {
    cause: error,
  });
}

/** The RPC method implementations. */
export function createHandlers(deps: HandlerDeps): RpcHandlers {
  checkLimitOption('registryMaxSessionsPerUser (REGISTRY_MAX_SESSIONS_PER_USER)', deps.registryMaxSessionsPerUser, {
    min: 1,
  });
  const now = deps.now ?? (() => new Date());
  const debug = (op: string, fields: Record<string, unknown>) => {
    if (deps.registryDebug) deps.logger.info('registry_op', { op, store: storeLabel(deps.registry), ...fields });
  };
  const notify = (userId: string, reason: string, registry?: UserRegistry) =>
    deps.publish(userId, registryEvent(userId, reason, registry)).catch((error: unknown) => {
      throw storeFailure(error, 'the event bus');
    });

  const requireUnified = () => {
    if (!deps.unifiedRegistryEnabled) {
      throw new RpcError(RpcErrorCode.Unavailable, 'the unified registry is disabled (UNIFIED_REGISTRY_ENABLED=false)');
    }
  };

  const requireTasks = (): TaskService => {
    if (!deps.tasks) {
      throw new RpcError(
        RpcErrorCode.Unavailable,
        'tasks are disabled on this gateway (TASKS_ENABLED=false; unset, it follows UNIFIED_REGISTRY_ENABLED=false); see docs/tasks.md',
      );
    }
    return deps.tasks;
  };

  /** The legacy view of a user, used when the unified store fails. */
  const legacyView = async (userId: string): Promise<UserRegistry> => {
    const sessions = await store(() => deps.registry.getSessions(userId));
    return emptyUserRegistry(userId, sessions.length > 0 || (await deps.isOnline(userId)));
  };

  return {
    'REGISTRY.register_user': async (ctx, userId, sessionId, route) => {
      authorize(ctx, userId);
      const registeredAt = now().toISOString();
      const entry = { session_id: sessionId, route, instance_id: deps.instanceId, registered_at: registeredAt };
      await registerBounded(deps, userId, entry);
      deps.registered?.(userId, sessionId, entry);
      debug('register_user', { uid: userId, session_id: sessionId, route });
      await notify(userId, 'session_registered');
      return { success: true, user_id: userId, session_id: sessionId, route, registered_at: registeredAt };
    },

    'REGISTRY.unregister_session': async (ctx, userId, sessionId) => {
      authorize(ctx, userId);
      // Forgotten first (a stall's write-back meanwhile must not bring back what is being taken
      // away), and again once removed: a register_user sent just before, answered in between,
      // has stored its entry locally meanwhile (Redis answers one connection in order).
      deps.registered?.(userId, sessionId, undefined, false);
      const removed = await store(() => deps.registry.unregisterSession(userId, sessionId));
      deps.registered?.(userId, sessionId, undefined);
      debug('unregister_session', { uid: userId, session_id: sessionId, removed });
      if (removed) await notify(userId, 'session_unregistered');
      return { success: true, removed };
    },

    'REGISTRY.get_sessions': async (ctx, userId) => {
      authorize(ctx, userId);
      const sessions = await store(() => deps.registry.getSessions(userId));
      debug('get_sessions', { uid: userId, count: sessions.length });
      return { user_id: userId, sessions };
    },

    'UNIFIED_REGISTRY.get_user_registry': async (ctx, userId) => {
      authorize(ctx, userId);
      requireUnified();
      try {
        const doc = await deps.registry.getUnified(userId);
        debug('get_user_registry', { uid: userId, found: doc !== undefined });
        return doc ?? emptyUserRegistry(userId, await deps.isOnline(userId));
      } catch (error) {
        deps.logger.warn('fallback', { uid: userId, op: 'get_user_registry', error: String(error) });
        return legacyView(userId);
      }
    },

    'UNIFIED_REGISTRY.update_user_registry': async (ctx, userId, patch) => {
      authorize(ctx, userId);
      requireUnified();
      await checkCompany(deps, ctx, patch.companies?.current_company_id);
      let updated: UserRegistry;
      try {
        const current =
          (await deps.registry.getUnified(userId)) ?? emptyUserRegistry(userId, await deps.isOnline(userId));
        updated = applyRegistryPatch(current, patch);
        checkUpdated(userId, current, updated);
        await deps.registry.putUnified(userId, updated, deps.unifiedRegistryTtlS);
      } catch (error) {
        if (error instanceof RpcError) throw error;
        // Writes do not fall back: the legacy registry has nowhere to keep the patch, and
        // answering success would silently lose it.
        deps.logger.warn('fallback', {
          uid: userId,
          op: 'update_user_registry',
          error: String(error),
          outcome: 'refused',
        });
        throw new RpcError(RpcErrorCode.Unavailable, 'the unified registry is unavailable; retry later', {
          cause: error,
        });
      }
      debug('update_user_registry', { uid: userId });
      // This instance's sessions move before the reply; other instances' on the registry.updated event.
      if (patch.companies) await deps.companies?.registryChanged(userId, updated.companies.current_company_id);
      await notify(userId, 'registry_updated', updated);
      return updated;
    },

    'TASK.start_document_analysis': async (ctx, userId, { content }, jobId) => {
      authorize(ctx, userId);
      const result = await requireTasks().startDocumentAnalysis(ctx.principal, userId, content, jobId);
      if (!result.existing) deps.logger.info('task_queued', { uid: userId, task_id: result.task_id });
      return result;
    },
    'TASK.get_status': async (ctx, taskId) => requireTasks().getStatus(ctx.principal, taskId),
    'TASK.cancel': async (ctx, taskId) => requireTasks().cancel(ctx.principal, taskId),

    'WORKFLOW.watch': async (ctx, jobId) => {
      if (!deps.hasLiveSession(ctx.principal.uid)) {
        throw new RpcError(RpcErrorCode.Unavailable, 'WORKFLOW.watch needs a live WebSocket session of the user');
      }
      if (deps.listeners.workflowsEnabled && !ctx.principal.service) {
        const owner = await deps.listeners.workflowOwner(jobId).catch((error: unknown) => {
          throw new RpcError(RpcErrorCode.Unavailable, 'the workflow store is unavailable; retry later', {
            cause: error,
          });
        });
        if (owner === undefined) throw new RpcError(RpcErrorCode.NotFound, `no job ${jobId}`);
        if (owner !== ctx.principal.uid) throw new RpcError(RpcErrorCode.Forbidden, 'you may only watch your own jobs');
      }
      await deps.listeners.watchWorkflow(ctx.principal.uid, jobId).catch((error: unknown) => {
        throw watchFailure(error);
      });
      return { success: true, job_id: jobId, watching: true };
    },

    'WORKFLOW.unwatch': async (ctx, jobId) => {
      await deps.listeners.unwatchWorkflow(ctx.principal.uid, jobId).catch((error: unknown) => {
        throw storeFailure(error, 'the workflow store');
      });
      return { success: true, job_id: jobId, watching: false };
    },
  };
}
