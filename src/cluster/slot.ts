/**
 * Redis Cluster hash slots: CRC16/XMODEM of the key (or of its hash tag)
 * modulo 16384, exactly as `CLUSTER KEYSLOT` computes it.
 *
 * Strings are hashed as their UTF-8 bytes. Pure ASCII strings — nearly all
 * keys — are hashed straight from their char codes, with no Buffer made.
 */

/** The number of hash slots of a Redis Cluster. */
export const SLOT_COUNT = 16384;

const OPEN_BRACE = 0x7b; // '{'
const CLOSE_BRACE = 0x7d; // '}'

/** CRC16/XMODEM (poly 0x1021, init 0, no reflection, no final xor), one entry per byte value. */
const TABLE: Uint16Array = (() => {
  const table = new Uint16Array(256);
  for (let byte = 0; byte < 256; byte++) {
    let crc = byte << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    table[byte] = crc;
  }
  return table;
})();

/** CRC16/XMODEM of `bytes[start, end)`. */
function crcOfBytes(bytes: Uint8Array, start: number, end: number): number {
  let crc = 0;
  for (let i = start; i < end; i++) crc = ((crc << 8) & 0xff00) ^ (TABLE[((crc >> 8) ^ (bytes[i] as number)) & 0xff] as number);
  return crc;
}

/**
 * CRC16/XMODEM of the UTF-8 bytes of `text[start, end)`: from the char codes
 * while they are ASCII (one byte each), through a Buffer otherwise.
 */
function crcOfText(text: string, start: number, end: number): number {
  let crc = 0;
  for (let i = start; i < end; i++) {
    const code = text.charCodeAt(i);
    if (code >= 0x80) {
      const bytes = Buffer.from(text.slice(start, end), 'utf8');
      return crcOfBytes(bytes, 0, bytes.length);
    }
    crc = ((crc << 8) & 0xff00) ^ (TABLE[((crc >> 8) ^ code) & 0xff] as number);
  }
  return crc;
}

/**
 * CRC16/XMODEM (poly 0x1021, init 0) of `bytes`, a string being hashed as
 * its UTF-8 bytes. `crc16('123456789') === 0x31c3`.
 */
export function crc16(bytes: string | Uint8Array): number {
  return typeof bytes === 'string' ? crcOfText(bytes, 0, bytes.length) : crcOfBytes(bytes, 0, bytes.length);
}

/**
 * The hash slot (0..16383) of `key`, as `CLUSTER KEYSLOT` reports it. With a
 * hash tag — a `{` followed later by a `}`, the first of each, with at least
 * one byte between them — only the bytes between are hashed, so
 * `{user1000}.following` and `{user1000}.followers` share a slot; `{}` (empty
 * tag) hashes the whole key. A string is hashed as its UTF-8 bytes: since
 * `{` and `}` never occur inside a multi-byte UTF-8 sequence, finding them
 * among the chars finds them among the bytes.
 */
export function slotOf(key: string | Uint8Array): number {
  if (typeof key === 'string') {
    const open = key.indexOf('{');
    if (open >= 0) {
      const close = key.indexOf('}', open + 1);
      if (close > open + 1) return crcOfText(key, open + 1, close) & (SLOT_COUNT - 1);
    }
    return crcOfText(key, 0, key.length) & (SLOT_COUNT - 1);
  }
  const open = key.indexOf(OPEN_BRACE);
  if (open >= 0) {
    const close = key.indexOf(CLOSE_BRACE, open + 1);
    if (close > open + 1) return crcOfBytes(key, open + 1, close) & (SLOT_COUNT - 1);
  }
  return crcOfBytes(key, 0, key.length) & (SLOT_COUNT - 1);
}
