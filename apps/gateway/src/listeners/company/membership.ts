import type { Firestore } from 'firebase-admin/firestore';
import type { Principal } from '../../auth/authenticator';
import { ownClaim } from '../../auth/principal';
import { fillPath } from '../listeners-config';
import type { CompanyConfig } from './company-config';
import { companyIdProblem } from './company-id';

/** Why a user may not follow a company. */
export interface MembershipRefusal {
  member: false;
  reason: 'invalid_company_id' | 'not_member' | 'membership_error';
  /** What the user is told. */
  message: string;
  /** `membership_error`: what Firestore said, for the operator's log, not for the user. */
  cause?: unknown;
}

/** Why a user may or may not follow a company. */
export type MembershipVerdict = { member: true; source: 'claim' | 'document' } | MembershipRefusal;

/** A user id that may be one Firestore path segment (a membership document's last one). */
const segmentSafe = (uid: string) => !uid.includes('/') && uid !== '.' && uid !== '..' && !/^__.*__$/.test(uid);

/**
 * Decides membership from what the user cannot write: a claim of the verified token and/or
 * a membership document (LISTENERS_FILE `company.membership`). A member is one that any
 * configured source names. Read afresh at every decision (session open, token refresh,
 * registry change), never cached.
 */
export class Membership {
  readonly #config: CompanyConfig['membership'];
  readonly #firestore: Firestore | undefined;

  constructor(config: CompanyConfig['membership'], firestore?: Firestore) {
    this.#config = config;
    this.#firestore = firestore;
  }

  /** Which sources decide, for messages: `token claim company_ids`, `document companies/{company_id}/members/{uid}`. */
  describe(): string {
    const { claim, document } = this.#config;
    return [claim ? `token claim ${claim}` : '', document ? `document ${document}` : ''].filter(Boolean).join(' or ');
  }

  async check(principal: Principal, companyId: string): Promise<MembershipVerdict> {
    const problem = companyIdProblem(companyId);
    if (problem) {
      return { member: false, reason: 'invalid_company_id', message: `invalid company id: ${problem}` };
    }
    const { claim, document } = this.#config;
    if (claim && claimNames(ownClaim(principal.claims, claim), companyId)) return { member: true, source: 'claim' };
    if (document && this.#firestore && segmentSafe(principal.uid)) {
      try {
        const path = fillPath(document, { company_id: companyId, uid: principal.uid });
        if ((await this.#firestore.doc(path).get()).exists) return { member: true, source: 'document' };
      } catch (error) {
        return {
          member: false,
          reason: 'membership_error',
          message: `membership of company ${companyId} could not be read; try again`,
          cause: error,
        };
      }
    }
    return {
      member: false,
      reason: 'not_member',
      message: `not a member of company ${companyId} (membership: ${this.describe()})`,
    };
  }
}

/** Whether a claim value names the company: an array of ids, or an object with the id as a truthy key. */
function claimNames(value: unknown, companyId: string): boolean {
  if (Array.isArray(value)) return value.includes(companyId);
  if (typeof value === 'object' && value !== null)
    return Boolean(Object.hasOwn(value, companyId) && (value as Record<string, unknown>)[companyId]);
  return false;
}
