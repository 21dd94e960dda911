import * as z from 'zod';
import { JsonObjectSchema, JsonValueSchema, UserIdSchema } from './common';

/** Lifecycle of a background task. */
export const TaskStatusSchema = z.enum(['queued', 'running', 'completed', 'failed', 'cancelled']);
export type TaskStatus = z.infer<typeof TaskStatusSchema>;

/** Progress of a task started with `TASK.*`, pushed until it reaches a final status. */
export const TaskProgressUpdateSchema = z.strictObject({
  task_id: z.string().min(1),
  status: TaskStatusSchema,
  /** Percent complete, 0 to 100. */
  progress: z.number().min(0).max(100),
  message: z.string().optional(),
  /** Present once `status` is `completed`. */
  result: JsonValueSchema.optional(),
  /** Present once `status` is `failed`: a message for people. */
  error: z.string().optional(),
  /**
   * Present once `status` is `failed`: what went wrong, for code (`document_too_large`,
   * `empty_document`, `attempts_exhausted`, `internal`, ...).
   */
  error_code: z.string().optional(),
});
export type TaskProgressUpdate = z.infer<typeof TaskProgressUpdateSchema>;

/** A change seen by one of the user's listeners (a Firestore snapshot, a Redis channel, a workflow). */
export const ListenerChangeSchema = z.strictObject({
  /** Which listener produced it: `firestore`, `redis`, `workflow`, ... */
  source: z.string().min(1),
  /** Document path, channel or job id the listener watches. */
  path: z.string().min(1),
  change: z.enum(['added', 'modified', 'removed']),
  data: JsonValueSchema.optional(),
  /** Name of the configured listener (`notifications`, `jobs`, `workflow`, ...). */
  listener: z.string().min(1).optional(),
  /**
   * Part of the listener's first snapshot after it attached for a user with no
   * delivered state: the document existed when the listener started. Absent or
   * false: a change that happened while the listener was attached (or while its
   * ownership moved to another instance).
   */
  initial: z.boolean().optional(),
  /** The document's update time (RFC 3339, microseconds); for `removed`, when the removal was seen. */
  update_time: z.string().min(1).optional(),
});
export type ListenerChange = z.infer<typeof ListenerChangeSchema>;

/**
 * One of the user's listeners stopped delivering (`failing`) or delivers again (`recovered`).
 * Sent by the gateway on each change of state only, never per retry, in the user's stream
 * like the listener's changes (docs/listeners.md, "Failures told to the user").
 */
export const ListenerStatusSchema = z.strictObject({
  /** As on the listener's `listener.change` events: `firestore`, `workflow`, `company`. */
  source: z.string().min(1),
  /** As on its `listener.change` events (`notifications`, `workflow`, ...). */
  listener: z.string().min(1),
  /** What it watches: a collection path, or the job's document path for a workflow watch. */
  path: z.string().min(1),
  status: z.enum(['failing', 'recovered']),
  /**
   * While failing: why (`permission_denied`, `failed_precondition` for a missing index,
   * `unavailable` when Firestore is out of reach, ...). A failing listener whose kind changes
   * is told again with the new one.
   */
  kind: z.string().min(1).optional(),
  /**
   * While failing: true while the gateway retries it on its own; false once it stopped
   * retrying (the listener was closed, e.g. a WORKFLOW.watch answered `unavailable`).
   */
  retrying: z.boolean().optional(),
});
export type ListenerStatus = z.infer<typeof ListenerStatusSchema>;

/** The user's registry entry changed (a session registered or left, a field was updated). */
export const RegistryUpdatedSchema = z.strictObject({
  user_id: UserIdSchema,
  reason: z.string().min(1),
  registry: JsonObjectSchema.optional(),
});
export type RegistryUpdated = z.infer<typeof RegistryUpdatedSchema>;

/** A message for the user's sessions from the application or an operator. */
export const SessionNoticeSchema = z.strictObject({
  level: z.enum(['info', 'warning', 'error']),
  message: z.string(),
  code: z.string().optional(),
});
export type SessionNotice = z.infer<typeof SessionNoticeSchema>;

/**
 * The event table: every event type a user can receive and the schema of its
 * `data`. Adding an event means adding a line here; everything else follows.
 */
export const eventTable = {
  'task.progress_update': TaskProgressUpdateSchema,
  'listener.change': ListenerChangeSchema,
  'listener.status': ListenerStatusSchema,
  'registry.updated': RegistryUpdatedSchema,
  'session.notice': SessionNoticeSchema,
} as const;

/** Event type names. */
export type EventType = keyof typeof eventTable;
/** Every event type name, for iteration. */
export const EVENT_TYPES = Object.keys(eventTable) as EventType[];
/** The `data` of an event of type `E`. */
export type EventData<E extends EventType> = z.infer<(typeof eventTable)[E]>;

/** Builds the `{ event, data }` pair for one event type, extended with `extra` fields. */
function eventShape<E extends EventType, X extends z.ZodRawShape>(name: E, extra: X) {
  return z.strictObject({ ...extra, event: z.literal(name), data: eventTable[name] });
}

/** Builds the discriminated union of every event type, each extended with `extra` fields. */
export function eventUnion<X extends z.ZodRawShape>(extra: X) {
  return z.discriminatedUnion('event', [
    eventShape('task.progress_update', extra),
    eventShape('listener.change', extra),
    eventShape('listener.status', extra),
    eventShape('registry.updated', extra),
    eventShape('session.notice', extra),
  ]);
}

/** An event as a publisher hands it over: type and data, before the gateway assigns a cursor. */
export const AppEventSchema = eventUnion({});
export type AppEvent = z.infer<typeof AppEventSchema>;

/** Whether `name` is a known event type. */
export function isEventType(name: string): name is EventType {
  return Object.hasOwn(eventTable, name);
}
