import * as z from 'zod';

/** A user id as the gateway and Firestore know it (Firebase uid, JWT `sub`). */
export const UserIdSchema = z.string().min(1).max(128);
/** A client-chosen session id, stable across reconnects of one tab or process. */
export const SessionIdSchema = z.string().min(1).max(128);
/** A per-user event cursor: strictly increasing integers starting at 1. */
export const CursorSchema = z.number().int().nonnegative();
/** Any JSON value. */
export const JsonValueSchema: z.ZodType<unknown> = z.json();
/** A JSON object with string keys. */
export const JsonObjectSchema = z.record(z.string(), z.json());
