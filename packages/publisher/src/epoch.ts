import { randomBytes } from 'node:crypto';

const EPOCH_BYTES = 6;
/** Epochs drawn per call of randomBytes: one call per publish cost about 3 % of a publisher's CPU. */
const POOL_EPOCHS = 256;
let pool = Buffer.alloc(0);
let next = 0;

/**
 * A fresh epoch, offered with every call: the Lua function keeps the existing
 * one and takes this only when it has to start a stream. base64url, so it is
 * safe inside a cursor and in JSON without escaping. Random bytes are drawn in
 * pools; each epoch still gets 6 of its own, never reused.
 */
export function newEpoch(): string {
  if (next >= pool.length) {
    pool = randomBytes(EPOCH_BYTES * POOL_EPOCHS);
    next = 0;
  }
  const epoch = pool.toString('base64url', next, next + EPOCH_BYTES);
  next += EPOCH_BYTES;
  return epoch;
}
