import { fleetUserKeys, type UserKeyPrefixes, userTag } from '@livebus/publisher/redis';

/**
 * Prefix of every company key: `lb:co:{<company>}:...`. Users' keys are `lb:{<uid>}:...`,
 * so no user id can name a company's key (the text after `lb:` starts with `{` for users).
 * The hash tag is the company id: all of a company's keys share one slot.
 */
export const COMPANY_KEY_PREFIX = 'lb:co:';

/** The prefixes that make the fleet's per-user lease and watermark stores work on companies. */
export const companyPrefixes: UserKeyPrefixes = { fleet: COMPANY_KEY_PREFIX };

/** A company's own keys (besides its lease and marks, named by {@link companyPrefixes}). */
export interface CompanyKeys {
  /** The company's journal: every change its listeners published, with cursors (a stream like a user's). */
  stream: string;
  meta: string;
  /** The journal's channel (the append script publishes to it; nobody needs to listen). */
  channel: string;
  /** Followers: zset `<uid>|<instance>` scored by expiry (Redis server ms). */
  followers: string;
  /** Followers whose initial state was sent: hash uid -> 1. */
  initialized: string;
  /** The lease (as {@link companyPrefixes} names it). */
  lease: string;
}

export function companyKeys(companyId: string): CompanyKeys {
  const base = `${COMPANY_KEY_PREFIX}{${userTag(companyId)}}`;
  return {
    stream: `${base}:s`,
    meta: `${base}:m`,
    channel: `${base}:n`,
    followers: `${base}:f`,
    initialized: `${base}:fi`,
    lease: fleetUserKeys(companyId, companyPrefixes).lease,
  };
}
