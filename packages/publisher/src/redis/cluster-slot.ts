import { userKeys, userTag } from './keyspace';

// biome-ignore lint/suspicious/noControlCharactersInRegex: the test is for any character past ASCII.
const NON_ASCII = /[^\x00-\x7f]/;

/** One byte more of a CRC16 (XMODEM). */
function crc16Byte(crc: number, byte: number): number {
  let next = crc ^ (byte << 8);
  for (let i = 0; i < 8; i++) next = next & 0x8000 ? ((next << 1) ^ 0x1021) & 0xffff : (next << 1) & 0xffff;
  return next;
}

/** CRC16 (XMODEM) of Redis Cluster, for the slot of a key (its hash tag). */
function crc16(text: string): number {
  let crc = 0;
  // ASCII (most keys): its UTF-16 units are its bytes, no buffer made.
  if (!NON_ASCII.test(text)) {
    for (let k = 0; k < text.length; k++) crc = crc16Byte(crc, text.charCodeAt(k));
  } else {
    for (const byte of Buffer.from(text)) crc = crc16Byte(crc, byte);
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

/** The slot of a user's keys (their hash tag is the user's {@link userTag}), without making them. */
export function userSlot(userId: string): number {
  const tag = userTag(userId);
  return tag.length > 0 ? crc16(tag) % 16384 : slotOf(userKeys(userId).stream);
}
