import { randomBytes } from 'node:crypto';

/**
 * An epoch candidate for a stream the append script may have to create (the publisher's
 * own `newEpoch` is internal to it): 6 random bytes, base64url, as the publisher's.
 */
export function newEpochText(): string {
  return randomBytes(6).toString('base64url');
}
