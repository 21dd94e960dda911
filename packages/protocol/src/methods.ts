import * as z from 'zod';
import {
  CompanyIdSchema,
  FIRESTORE_RESERVED_ID_LOOKAHEAD,
  FIRESTORE_RESERVED_ID_RULE,
  JsonObjectSchema,
  type JsonValue,
  SessionIdSchema,
  UserIdSchema,
} from './common';
import { TaskProgressUpdateSchema, TaskStatusSchema } from './events';

/** One registered session of a user, as the legacy registry stores it. */
export const RegistrySessionSchema = z.strictObject({
  session_id: SessionIdSchema,
  route: z.string(),
  instance_id: z.string().optional(),
  /** ISO 8601 time of registration. */
  registered_at: z.string(),
});
export type RegistrySession = z.infer<typeof RegistrySessionSchema>;

/**
 * Bounds of a user's unified registry document. `UNIFIED_REGISTRY.update_user_registry` checks
 * `services` as it would be once the patch is merged, and refuses with `invalid_params`, storing
 * nothing, a patch that would take it past a bound. A document already past one (stored before
 * these bounds) may still be updated as long as the patch does not grow it in that measure.
 * The whole document then stays far below the protocol's `maxFrameBytes` (1 MiB), so the
 * `registry.updated` event and the method's result that carry it always fit in a frame.
 */
export const registryLimits = {
  /** Most keys `services` may hold. @default 256 */
  maxServiceKeys: 256,
  /** Longest `services` key a patch may name, in characters. @default 128 */
  maxServiceKeyChars: 128,
  /** Largest `services`, in bytes of its JSON text (UTF-8, as `JSON.stringify` writes it). @default 65_536 */
  maxServicesBytes: 65_536,
} as const;

/**
 * The unified registry document of a user. Read leniently (a document stored before
 * {@link registryLimits} and {@link CompanyIdSchema} existed is still returned).
 */
export const UserRegistrySchema = z.strictObject({
  user_info: z.strictObject({ user_id: UserIdSchema, status: z.enum(['online', 'offline', 'away']) }),
  companies: z.strictObject({ current_company_id: z.string().nullable() }),
  services: JsonObjectSchema,
});
export type UserRegistry = z.infer<typeof UserRegistrySchema>;

/**
 * A partial update of a {@link UserRegistry}: `services` keys are merged, `null` removes one.
 * Keys are at most {@link registryLimits}.maxServiceKeyChars characters; the merged `services`
 * is bounded too (see {@link registryLimits}).
 */
export const UserRegistryPatchSchema = z.strictObject({
  user_info: z.strictObject({ status: z.enum(['online', 'offline', 'away']) }).optional(),
  companies: z.strictObject({ current_company_id: CompanyIdSchema.nullable() }).optional(),
  services: z.record(z.string().max(registryLimits.maxServiceKeyChars), z.json() as z.ZodType<JsonValue>).optional(),
});
export type UserRegistryPatch = z.infer<typeof UserRegistryPatchSchema>;

const TaskIdSchema = z.string().min(1).max(256);
const JobIdSchema = z.string().min(1).max(200);
/**
 * The job id of `WORKFLOW.watch`: it names the job's Firestore document, so it must be one
 * document id: no `/`, not `.` or `..` alone, not starting and ending with `__` (reserved by
 * Firestore; {@link FIRESTORE_RESERVED_ID_LOOKAHEAD}). Refused with `invalid_params` (it can never
 * be watched), never cut or escaped. `WORKFLOW.unwatch` takes any `JobIdSchema`, so a watch
 * stored before this check can still be released.
 */
const WorkflowJobIdSchema = JobIdSchema.regex(
  new RegExp(`^${FIRESTORE_RESERVED_ID_LOOKAHEAD}[^/]+$`),
  `expected a Firestore document id: no /, ${FIRESTORE_RESERVED_ID_RULE}`,
);

/** Snapshot of a task, as `TASK.get_status` returns it: its last progress update, with owner and times. */
export const TaskInfoSchema = TaskProgressUpdateSchema.extend({
  task_id: TaskIdSchema,
  user_id: UserIdSchema,
  created_at: z.string(),
  updated_at: z.string(),
  /** The caller's job id the task was started with. */
  job_id: JobIdSchema.optional(),
  /** The queue's own id of the job (a BullMQ job id, or the in-process queue's). */
  queue_job_id: z.string().optional(),
  /** Alias of `queue_job_id` for callers written against the Celery system. */
  celery_task_id: z.string().optional(),
  /** How many times a worker has started it (more than 1 after a retry or a lost worker). */
  attempts: z.number().int().min(0).optional(),
});
export type TaskInfo = z.infer<typeof TaskInfoSchema>;

/** Declares one RPC method: its positional parameters and its result. */
function method<P extends z.ZodTuple, R extends z.ZodType>(params: P, result: R, description: string) {
  return { params, result, description } as const;
}

/**
 * The RPC method table: for each `NAMESPACE.method`, its positional parameters
 * (as sent in `rpc.args`) and its result. Names and shapes match the legacy
 * `rpc_call("NAMESPACE.method", args=[...])` callers.
 */
export const methodTable = {
  'REGISTRY.register_user': method(
    z.tuple([UserIdSchema, SessionIdSchema, z.string().max(512)]),
    z.strictObject({
      success: z.literal(true),
      user_id: UserIdSchema,
      session_id: SessionIdSchema,
      route: z.string(),
      registered_at: z.string(),
    }),
    "Registers a session of the user under a route (the page or service it serves). Registering an id already registered replaces its entry; a new session id past the gateway's `REGISTRY_MAX_SESSIONS_PER_USER` is refused with `rate_limited` (`data: { registered, max_registered }`) and nothing is stored: unregister one (`REGISTRY.unregister_session`) first.",
  ),
  'REGISTRY.unregister_session': method(
    z.tuple([UserIdSchema, SessionIdSchema]),
    z.strictObject({ success: z.literal(true), removed: z.boolean() }),
    'Removes one session from the user registry; `removed` is false when it was not registered.',
  ),
  'REGISTRY.get_sessions': method(
    z.tuple([UserIdSchema]),
    z.strictObject({ user_id: UserIdSchema, sessions: z.array(RegistrySessionSchema) }),
    'Lists the registered sessions of the user.',
  ),
  'UNIFIED_REGISTRY.get_user_registry': method(
    z.tuple([UserIdSchema]),
    UserRegistrySchema,
    'Returns the unified registry document of the user (requires UNIFIED_REGISTRY_ENABLED).',
  ),
  'UNIFIED_REGISTRY.update_user_registry': method(
    z.tuple([UserIdSchema, UserRegistryPatchSchema]),
    UserRegistrySchema,
    `Applies a patch to the unified registry document and returns the result. \`services\` keys merge (\`null\` removes one); a patch that would leave more than ${registryLimits.maxServiceKeys} keys, or more than ${registryLimits.maxServicesBytes} bytes of \`services\` JSON, is refused with \`invalid_params\` and nothing is stored (a document already past a bound may be updated as long as the patch does not grow it there). Keys are at most ${registryLimits.maxServiceKeyChars} characters; \`current_company_id\` is 1 to 128 letters, digits, \`_\`, \`-\` or \`.\` (not \`.\` or \`..\` alone, not starting and ending with \`__\`).`,
  ),
  'TASK.start_document_analysis': method(
    z.tuple([UserIdSchema, z.strictObject({ content: z.string() }), JobIdSchema]),
    z.strictObject({
      success: z.literal(true),
      task_id: TaskIdSchema,
      job_id: JobIdSchema,
      /** `queued` for a new task; the current status when the job id was already started. */
      status: TaskStatusSchema,
      created_at: z.string(),
      /** The queue's own id of the job. */
      queue_job_id: z.string().optional(),
      /** Alias of `queue_job_id`, kept for callers written against the Celery system. */
      celery_task_id: z.string().optional(),
      /** True when this job id had already been started: the answer describes that task, nothing new runs. */
      existing: z.boolean().optional(),
    }),
    'Queues a document analysis (at most once per job id); `task.progress_update` events follow until it ends.',
  ),
  'TASK.get_status': method(z.tuple([TaskIdSchema]), TaskInfoSchema, 'Returns the current state of a task.'),
  'TASK.cancel': method(
    z.tuple([TaskIdSchema]),
    z.strictObject({ success: z.boolean(), task_id: TaskIdSchema, status: TaskStatusSchema }),
    'Cancels a queued or running task; `success` is false when it had already finished.',
  ),
  'WORKFLOW.watch': method(
    z.tuple([WorkflowJobIdSchema]),
    z.strictObject({ success: z.literal(true), job_id: WorkflowJobIdSchema, watching: z.literal(true) }),
    "Attaches a workflow listener: changes of the job arrive as `listener.change` events (source `workflow`). A user watches at most the gateway's `WORKFLOW_MAX_WATCHES_PER_USER` jobs at once: watching a further job is refused with `rate_limited` (`data: { watches, max_watches }`) until one is unwatched (`WORKFLOW.unwatch`); watching a job already watched always succeeds. The job id is its Firestore document id (no `/`, not `.` or `..` alone, not starting and ending with `__`): another is refused with `invalid_params`. A listener that fails to open within the wait for the job's initial state (3 s), or a read of the job's owner not answered within 3 s (Firestore out of reach), answers `unavailable` and the job is not watched; one only slow to open answers success. That answer comes from the instance holding the user's listeners: a watch received by another instance answers success at the bound whatever the holder's listener does, its failure told by a `listener.status` event ([listeners](listeners.md#workflow-watches-in-the-fleet)).",
  ),
  'WORKFLOW.unwatch': method(
    // Any job id, also one WORKFLOW.watch refuses now: a watch stored before that check must be
    // releasable (it would count against WORKFLOW_MAX_WATCHES_PER_USER until the user left).
    z.tuple([JobIdSchema]),
    z.strictObject({ success: z.literal(true), job_id: JobIdSchema, watching: z.literal(false) }),
    'Releases a workflow listener attached with `WORKFLOW.watch`. Takes any job id of 1 to 200 characters, also one `WORKFLOW.watch` refuses, so a watch stored before that check can be released.',
  ),
} as const;

/** Every RPC method name. */
export type RpcMethod = keyof typeof methodTable;
/** Every RPC method name, for iteration. */
export const RPC_METHODS = Object.keys(methodTable) as RpcMethod[];
/** The positional parameters of method `M`, as a tuple type. */
export type RpcParams<M extends RpcMethod> = z.infer<(typeof methodTable)[M]['params']>;
/** The result of method `M`. */
export type RpcResult<M extends RpcMethod> = z.infer<(typeof methodTable)[M]['result']>;

/** Whether `name` is a known RPC method. */
export function isRpcMethod(name: string): name is RpcMethod {
  return Object.hasOwn(methodTable, name);
}

/**
 * The signature of a typed RPC function: `rpc("TASK.start_document_analysis", uid, { content }, jobId)`
 * checks the arguments against the method's params and types the promised result.
 */
export type RpcCaller = <M extends RpcMethod>(method: M, ...args: RpcParams<M>) => Promise<RpcResult<M>>;
