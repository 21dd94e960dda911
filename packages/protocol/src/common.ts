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
 * The ids Firestore refuses for a document or path segment, as a regular-expression prefix
 * (lookaheads): `.` and `..` alone, and every id that starts and ends with two underscores
 * (`__x__`, matching `__.*__`), which Firestore reserves. Written once: {@link COMPANY_ID_PATTERN}
 * and the workflow job id of `WORKFLOW.watch` are built on it.
 */
export const FIRESTORE_RESERVED_ID_LOOKAHEAD = '(?!\\.\\.?$)(?!__.*__$)';
/** What {@link FIRESTORE_RESERVED_ID_LOOKAHEAD} refuses, for messages. */
export const FIRESTORE_RESERVED_ID_RULE = 'not . or .. alone, not __ at both ends (__x__, reserved by Firestore)';

/**
 * A company id: 1 to 128 letters, digits, `_`, `-` and `.`, and not an id Firestore refuses
 * ({@link FIRESTORE_RESERVED_ID_LOOKAHEAD}). The one rule for company ids: {@link CompanyIdSchema}
 * and {@link companyIdProblem} (the gateway's company listeners) both use it.
 */
export const COMPANY_ID_PATTERN = new RegExp(`^${FIRESTORE_RESERVED_ID_LOOKAHEAD}[A-Za-z0-9_.-]{1,128}$`);

/**
 * A company id (`companies.current_company_id`). It ends up in Firestore paths
 * (`companies/{company_id}/jobs`) and Redis keys, so it must be one plain Firestore path
 * segment: 1 to 128 letters, digits, `_`, `-` and `.`, not `.` or `..` alone, not starting and
 * ending with `__` (reserved by Firestore). Anything else is refused, never escaped or cut.
 */
export const CompanyIdSchema = z
  .string()
  .regex(COMPANY_ID_PATTERN, `expected 1 to 128 letters, digits, _, - or . (no /; ${FIRESTORE_RESERVED_ID_RULE})`);

/**
 * Why `id` is not a company id ({@link COMPANY_ID_PATTERN}), or undefined when it is one: the
 * check {@link CompanyIdSchema} makes, with a message naming the rule it breaks.
 */
export function companyIdProblem(id: unknown): string | undefined {
  if (typeof id !== 'string') return 'must be a string';
  if (COMPANY_ID_PATTERN.test(id)) return undefined;
  if (!/^[A-Za-z0-9_.-]{1,128}$/.test(id)) return 'must be 1 to 128 letters, digits, _, - or . (no /)';
  if (id === '.' || id === '..') return 'must not be . or ..';
  return 'must not start and end with __ (__x__ is reserved by Firestore)';
}

/**
 * A JSON value, as the protocol's types name it: a plain type of its own, so that a library's
 * emitted declarations never need zod's (`z.json()`'s) type.
 */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
/** Any JSON value. */
export const JsonValueSchema: z.ZodType<unknown> = z.json();
/** A JSON object with string keys. */
export const JsonObjectSchema = z.record(z.string(), z.json() as z.ZodType<JsonValue>);

/** Validates an {@link AuthFailureReason} (the reason of a 4001 close). */
export const AuthFailureReasonSchema = z.enum(
  Object.keys(AUTH_FAILURE_REASONS) as [AuthFailureReason, ...AuthFailureReason[]],
);
