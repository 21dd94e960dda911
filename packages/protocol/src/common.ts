import * as z from 'zod';
import { AUTH_FAILURE_REASONS, type AuthFailureReason } from './close-codes';

/** A user id as the gateway and Firestore know it (Firebase uid, JWT `sub`). */
export const UserIdSchema = z.string().min(1).max(128);
/** A client-chosen session id, stable across reconnects of one tab or process. */
export const SessionIdSchema = z.string().min(1).max(128);
/**
 * A position in a user's event stream, opaque to applications: `<epoch>:<offset>`.
 * The epoch names one incarnation of the stream (a stream that was lost or reset
 * gets a new one, so an old position is never mistaken for a new one); the offset
 * counts events within it. Persist it as a string; compare with {@link compareCursors}.
 */
export const CursorSchema = z.string().regex(/^[0-9A-Za-z_-]{1,32}:[0-9]{1,16}$/, 'expected <epoch>:<offset>');
export type Cursor = z.infer<typeof CursorSchema>;
/**
 * A company id (`companies.current_company_id`). It ends up in Firestore paths
 * (`companies/{company_id}/jobs`) and Redis keys, so it must be one plain Firestore path
 * segment: 1 to 128 letters, digits, `_`, `-` and `.`, not `.` or `..` alone, not `__name__`
 * (reserved by Firestore). Anything else is refused, never escaped or cut.
 */
export const CompanyIdSchema = z
  .string()
  .regex(
    /^(?!\.\.?$)(?!__.*__$)[A-Za-z0-9_.-]{1,128}$/,
    'expected 1 to 128 letters, digits, _, - or . (no /; not . or .., not __name__)',
  );
/** Any JSON value. */
export const JsonValueSchema: z.ZodType<unknown> = z.json();
/** A JSON object with string keys. */
export const JsonObjectSchema = z.record(z.string(), z.json());

/** Validates an {@link AuthFailureReason} (the reason of a 4001 close). */
export const AuthFailureReasonSchema = z.enum(
  Object.keys(AUTH_FAILURE_REASONS) as [AuthFailureReason, ...AuthFailureReason[]],
);
