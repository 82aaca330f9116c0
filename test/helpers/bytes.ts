/** Byte builders for golden tests: hex text, 32-byte name fields, little-endian words. */
import { GROUP_NAME_BYTES } from '../../src/protocol/constants.js';

/** Hex text to bytes; whitespace is ignored. */
export const hex = (text: string): Buffer => Buffer.from(text.replace(/\s+/g, ''), 'hex');

/** A name zero-padded to a 32-byte field. */
export const name32 = (name: string): Buffer => Buffer.concat([Buffer.from(name, 'latin1'), Buffer.alloc(GROUP_NAME_BYTES - name.length)]);

/** An unsigned 32-bit little-endian word. */
export const le32 = (value: number): Buffer => {
  const out = Buffer.alloc(4);
  out.writeUInt32LE(value >>> 0);
  return out;
};
