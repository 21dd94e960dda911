/** The Redis keys and channel of one user's stream. */
export interface UserKeys {
  /** Redis Stream of the user's events, retained for resume; entry id = offset. */
  stream: string;
  /** Hash: `e` epoch, `o` offset of the last event, `b` bytes retained in the stream. */
  meta: string;
  /** Sharded pub/sub channel (SPUBLISH / SSUBSCRIBE) carrying each stored event as JSON. */
  channel: string;
}

/**
 * The hash tag of a user: every key of a user must hash to one slot (the Lua
 * function touches them together), so `{` and `}` in a user id are escaped:
 * unescaped, `}x` would make an empty tag and scatter the keys over slots.
 * `%` is escaped too, which keeps the mapping one-to-one.
 */
export function userTag(userId: string): string {
  return userId.replace(/[%{}]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** Keys of a user: `lb:{<uid>}:s`, `lb:{<uid>}:m`, channel `lb:{<uid>}:n`, all in one hash slot. */
export function userKeys(userId: string): UserKeys {
  const base = `lb:{${userTag(userId)}}`;
  return { stream: `${base}:s`, meta: `${base}:m`, channel: `${base}:n` };
}
