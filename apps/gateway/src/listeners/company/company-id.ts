/**
 * Company ids come from users (the unified registry's `companies.current_company_id`)
 * and end up in Firestore paths (`companies/{company_id}/jobs`) and Redis keys. Only
 * ids that are one plain Firestore path segment are accepted: letters, digits, `_`,
 * `-` and `.` (not `.` or `..` alone, not `__x__`, which Firestore reserves), 1 to
 * 128 characters. Anything else is refused before it reaches a path: never escaped,
 * never cut.
 */
const COMPANY_ID = /^[A-Za-z0-9_.-]{1,128}$/;

/** Why a company id is refused, or undefined when it is a valid one. */
export function companyIdProblem(id: unknown): string | undefined {
  if (typeof id !== 'string') return 'must be a string';
  if (!COMPANY_ID.test(id)) return 'must be 1 to 128 letters, digits, _, - or . (no /)';
  if (id === '.' || id === '..') return 'must not be . or ..';
  if (/^__.*__$/.test(id)) return 'must not be __name__ (reserved by Firestore)';
  return undefined;
}

/** Whether `id` may name a company (see {@link companyIdProblem}). */
export function isCompanyId(id: unknown): id is string {
  return companyIdProblem(id) === undefined;
}
