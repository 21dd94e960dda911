/**
 * Documented examples of every frame, method and event. docs/protocol.md is
 * generated from them and the test suite checks each one against the schemas,
 * so the documentation cannot drift from the protocol.
 */
import type { AppEvent } from './events';
import type { ClientFrame, ServerFrame } from './frames';
import type { RpcMethod, RpcParams, RpcResult } from './methods';

/** A titled example frame. */
export interface FrameExample<F> {
  title: string;
  frame: F;
}

/** Frames a client sends. */
export const clientFrameExamples: FrameExample<ClientFrame>[] = [
  {
    title: 'hello from a browser (token in the frame, resuming after cursor k3x9q2:41, server-driven pings)',
    frame: {
      type: 'hello',
      v: 1,
      token: 'eyJhbGciOi...',
      session_id: 'tab-7f3a',
      route: '/inbox',
      last_cursor: 'k3x9q2:41',
      app_ping: true,
    },
  },
  {
    title: 'hello from a server (token in the Authorization header)',
    frame: { type: 'hello', v: 1, session_id: 'worker-1' },
  },
  {
    title: 'hello in development (AUTH_MODE=none)',
    frame: { type: 'hello', v: 1, user_id: 'user-123' },
  },
  {
    title: 'rpc call',
    frame: { type: 'rpc', id: 1, method: 'REGISTRY.register_user', args: ['user-123', 'tab-7f3a', '/inbox'] },
  },
  {
    title: 'a fresh token for the open session (answer to notice token_expiring)',
    frame: { type: 'auth', token: 'eyJhbGciOi...' },
  },
  { title: 'app-level ping', frame: { type: 'ping', ts: 1763800000000 } },
  { title: 'app-level pong (answer to a server ping frame)', frame: { type: 'pong', ts: 1763800000000 } },
];

/** Frames the server sends. */
export const serverFrameExamples: FrameExample<ServerFrame>[] = [
  {
    title: 'welcome after a successful resume',
    frame: {
      type: 'welcome',
      v: 1,
      session_id: 'tab-7f3a',
      user_id: 'user-123',
      instance_id: 'gw-1a2b3c',
      heartbeat: { ping_interval_ms: 20000, ping_timeout_ms: 60000 },
      resume: { status: 'resumed', cursor: 'k3x9q2:44', replayed: 3 },
    },
  },
  {
    title: 'welcome when continuity was lost: the stream was made anew, its 2 events follow',
    frame: {
      type: 'welcome',
      v: 1,
      session_id: 'tab-7f3a',
      user_id: 'user-123',
      instance_id: 'gw-1a2b3c',
      heartbeat: { ping_interval_ms: 20000, ping_timeout_ms: 60000 },
      resume: { status: 'gap', cursor: 'p0w7ma:0', replayed: 2 },
    },
  },
  {
    title: 'rpc result',
    frame: {
      type: 'rpc_result',
      id: 1,
      result: {
        success: true,
        user_id: 'user-123',
        session_id: 'tab-7f3a',
        route: '/inbox',
        registered_at: '2026-11-22T12:00:00.000Z',
      },
    },
  },
  {
    title: 'rpc error (invalid params)',
    frame: {
      type: 'rpc_error',
      id: 2,
      error: {
        code: 'invalid_params',
        message: 'invalid params: args.0: Too small: expected string to have >=1 characters',
        data: { issues: [{ path: '0', message: 'Too small: expected string to have >=1 characters' }] },
      },
    },
  },
  {
    title: 'event: task progress',
    frame: {
      type: 'event',
      cursor: 'k3x9q2:42',
      ts: 1763800000000,
      event: 'task.progress_update',
      data: { task_id: 'doc_analysis_job-9', status: 'running', progress: 40, message: 'reading pages' },
    },
  },
  {
    title: 'event: listener change',
    frame: {
      type: 'event',
      cursor: 'k3x9q2:43',
      ts: 1763800000100,
      event: 'listener.change',
      data: {
        source: 'firestore',
        listener: 'notifications',
        path: 'users/user-123/notifications/m1',
        change: 'added',
        initial: false,
        update_time: '2025-11-22T08:26:40.100000Z',
        data: { subject: 'Hi' },
      },
    },
  },
  {
    title: 'event: a listener of the user is failing (here a missing index), and the gateway retries it',
    frame: {
      type: 'event',
      cursor: 'k3x9q2:46',
      ts: 1763800000400,
      event: 'listener.status',
      data: {
        source: 'firestore',
        listener: 'jobs',
        path: 'jobs',
        status: 'failing',
        kind: 'failed_precondition',
        retrying: true,
      },
    },
  },
  {
    title: 'event: that listener delivers again (its changes since the failure came before this)',
    frame: {
      type: 'event',
      cursor: 'k3x9q2:49',
      ts: 1763800900000,
      event: 'listener.status',
      data: { source: 'firestore', listener: 'jobs', path: 'jobs', status: 'recovered' },
    },
  },
  {
    title: 'event: registry updated',
    frame: {
      type: 'event',
      cursor: 'k3x9q2:44',
      ts: 1763800000200,
      event: 'registry.updated',
      data: { user_id: 'user-123', reason: 'session_registered' },
    },
  },
  {
    title: 'event: session notice',
    frame: {
      type: 'event',
      cursor: 'k3x9q2:45',
      ts: 1763800000300,
      event: 'session.notice',
      data: { level: 'warning', message: 'Your plan expires tomorrow', code: 'plan_expiring' },
    },
  },
  {
    title: 'notice: the instance is shutting down',
    frame: {
      type: 'notice',
      kind: 'shutting_down',
      message: 'instance is restarting',
      reconnect_after_ms: 1830,
    },
  },
  {
    title: 'notice: the token expires soon, send an auth frame',
    frame: {
      type: 'notice',
      kind: 'token_expiring',
      message: 'token expires soon; send an auth frame with a fresh token',
      expires_at_ms: 1763803600000,
    },
  },
  {
    title: 'notice: the fresh token was accepted',
    frame: { type: 'notice', kind: 'token_refreshed', message: 'token refreshed', expires_at_ms: 1763807200000 },
  },
  {
    title: 'frame-level error',
    frame: {
      type: 'error',
      code: 'bad_frame',
      message: 'invalid frame: type: Invalid input',
      issues: [{ path: 'type', message: 'Invalid input' }],
    },
  },
  { title: 'server ping (a browser answers with pong)', frame: { type: 'ping', ts: 1763800000000 } },
  { title: 'pong', frame: { type: 'pong', ts: 1763800000000 } },
];

/** One call of a method and the result it returns. */
export interface MethodExample<M extends RpcMethod> {
  args: RpcParams<M>;
  result: RpcResult<M>;
}

/** An example call of every RPC method. */
export const methodExamples: { [M in RpcMethod]: MethodExample<M> } = {
  'REGISTRY.register_user': {
    args: ['user-123', 'tab-7f3a', '/inbox'],
    result: {
      success: true,
      user_id: 'user-123',
      session_id: 'tab-7f3a',
      route: '/inbox',
      registered_at: '2026-11-22T12:00:00.000Z',
    },
  },
  'REGISTRY.unregister_session': { args: ['user-123', 'tab-7f3a'], result: { success: true, removed: true } },
  'REGISTRY.get_sessions': {
    args: ['user-123'],
    result: {
      user_id: 'user-123',
      sessions: [
        {
          session_id: 'tab-7f3a',
          route: '/inbox',
          instance_id: 'gw-1a2b3c',
          registered_at: '2026-11-22T12:00:00.000Z',
        },
      ],
    },
  },
  'UNIFIED_REGISTRY.get_user_registry': {
    args: ['user-123'],
    result: {
      user_info: { user_id: 'user-123', status: 'online' },
      companies: { current_company_id: 'acme' },
      services: { inbox: { unread: 3 } },
    },
  },
  'UNIFIED_REGISTRY.update_user_registry': {
    args: ['user-123', { companies: { current_company_id: 'globex' }, services: { inbox: null } }],
    result: {
      user_info: { user_id: 'user-123', status: 'online' },
      companies: { current_company_id: 'globex' },
      services: {},
    },
  },
  'TASK.start_document_analysis': {
    args: ['user-123', { content: 'Quarterly report ...' }, 'job-9'],
    result: {
      success: true,
      task_id: 'doc_analysis_job-9',
      job_id: 'job-9',
      status: 'queued',
      created_at: '2026-11-22T12:00:00.000Z',
      queue_job_id: 't-5f1c0e2a9b7d4c3e8a6f1b2c3d4e5f60',
      celery_task_id: 't-5f1c0e2a9b7d4c3e8a6f1b2c3d4e5f60',
    },
  },
  'TASK.get_status': {
    args: ['doc_analysis_job-9'],
    result: {
      task_id: 'doc_analysis_job-9',
      user_id: 'user-123',
      status: 'running',
      progress: 40,
      message: 'reading pages',
      created_at: '2026-11-22T12:00:00.000Z',
      updated_at: '2026-11-22T12:00:02.000Z',
      job_id: 'job-9',
      queue_job_id: 't-5f1c0e2a9b7d4c3e8a6f1b2c3d4e5f60',
      celery_task_id: 't-5f1c0e2a9b7d4c3e8a6f1b2c3d4e5f60',
      attempts: 1,
    },
  },
  'TASK.cancel': {
    args: ['doc_analysis_job-9'],
    result: { success: true, task_id: 'doc_analysis_job-9', status: 'cancelled' },
  },
  'WORKFLOW.watch': { args: ['job-9'], result: { success: true, job_id: 'job-9', watching: true } },
  'WORKFLOW.unwatch': { args: ['job-9'], result: { success: true, job_id: 'job-9', watching: false } },
};

/** Events as a publisher hands them to `POST /publish`. */
export const appEventExamples: AppEvent[] = [
  {
    event: 'task.progress_update',
    data: { task_id: 'doc_analysis_job-9', status: 'completed', progress: 100, result: { pages: 12 } },
  },
  { event: 'session.notice', data: { level: 'info', message: 'Deploy finished' } },
];
