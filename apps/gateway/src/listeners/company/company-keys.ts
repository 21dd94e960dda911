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

/** CRC16 (XMODEM) of Redis Cluster, for the slot of a key (its hash tag). */
function crc16(text: string): number {
  let crc = 0;
  for (const byte of Buffer.from(text)) {
    crc ^= byte << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

/** The Redis Cluster slot of a key. */
export function slotOf(key: string): number {
  const open = key.indexOf('{');
  if (open >= 0) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) return crc16(key.slice(open + 1, close)) % 16384;
  }
  return crc16(key) % 16384;
}
