import { randomBytes } from 'node:crypto';

/**
 * A fresh epoch, offered with every call: the Lua function keeps the existing
 * one and takes this only when it has to start a stream. base64url, so it is
 * safe inside a cursor and in JSON without escaping.
 */
export function newEpoch(): string {
  return randomBytes(6).toString('base64url');
}
