import { companyIdProblem } from '@livebus/protocol';

/**
 * Company ids come from users (the unified registry's `companies.current_company_id`) and end up
 * in Firestore paths (`companies/{company_id}/jobs`) and Redis keys. The rule is the protocol's
 * (`COMPANY_ID_PATTERN`, the one `CompanyIdSchema` checks): 1 to 128 letters, digits, `_`, `-`
 * and `.`, not `.` or `..` alone, not starting and ending with `__`. Refused, never escaped or cut.
 */
export { companyIdProblem };

/** Whether `id` may name a company (see {@link companyIdProblem}). */
export function isCompanyId(id: unknown): id is string {
  return companyIdProblem(id) === undefined;
}
