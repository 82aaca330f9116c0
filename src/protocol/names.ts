/**
 * Names on the wire: private names, private groups `#name#daemon`, group names in
 * 32-byte NUL-terminated fields (§0, §2.3, §3.1, §3.3).
 */
import {
  DAEMON_NAME_LENGTH_MAX,
  GROUP_NAME_BYTES,
  NAME_BYTE_MAX,
  NAME_BYTE_MIN,
  PRIVATE_NAME_LENGTH_MAX,
} from './constants.js';

export function isLegalNameByte(byte: number): boolean {
  return byte >= NAME_BYTE_MIN && byte <= NAME_BYTE_MAX;
}

export function isLegalName(name: string, lengthMax: number): boolean {
  if (name.length === 0 || name.length > lengthMax) return false;
  for (let i = 0; i < name.length; i++) {
    if (!isLegalNameByte(name.charCodeAt(i))) return false;
  }
  return true;
}

/** A group name a client may join or leave: 1–31 bytes of `$`…`~` (§4.4). */
export function isLegalGroupName(name: string): boolean {
  return isLegalName(name, GROUP_NAME_BYTES - 1);
}

export function isLegalPrivateName(name: string): boolean {
  return isLegalName(name, PRIVATE_NAME_LENGTH_MAX);
}

export function formatPrivateGroup(privateName: string, daemonName: string): string {
  return `#${privateName}#${daemonName}`;
}

export interface PrivateGroupParts {
  privateName: string;
  daemonName: string;
}

/** Splits `#name#daemon`; null unless both parts are legal (§3.3). */
export function parsePrivateGroup(group: string): PrivateGroupParts | null {
  if (group.charCodeAt(0) !== 0x23) return null;
  const second = group.indexOf('#', 1);
  if (second < 0) return null;
  const privateName = group.slice(1, second);
  const daemonName = group.slice(second + 1);
  if (!isLegalName(privateName, PRIVATE_NAME_LENGTH_MAX)) return null;
  if (!isLegalName(daemonName, DAEMON_NAME_LENGTH_MAX)) return null;
  return { privateName, daemonName };
}

export function isPrivateGroupName(group: string): boolean {
  return group.charCodeAt(0) === 0x23;
}

/** Reads a NUL-terminated name from a fixed field; everything after the first NUL is ignored (§3.1). */
export function readFixedName(bytes: Uint8Array, offset: number, fieldBytes = GROUP_NAME_BYTES): string {
  let end = offset;
  const limit = offset + fieldBytes;
  while (end < limit && bytes[end] !== 0) end++;
  return latin1(bytes, offset, end);
}

/** True when the field holds a NUL within its 32 bytes. */
export function hasTerminator(bytes: Uint8Array, offset: number, fieldBytes = GROUP_NAME_BYTES): boolean {
  for (let i = offset; i < offset + fieldBytes; i++) if (bytes[i] === 0) return true;
  return false;
}

/** Writes `name` zero-padded into a fixed field; names longer than field-1 are truncated. */
export function writeFixedName(target: Uint8Array, offset: number, name: string, fieldBytes = GROUP_NAME_BYTES): void {
  const length = Math.min(name.length, fieldBytes - 1);
  for (let i = 0; i < length; i++) target[offset + i] = name.charCodeAt(i) & 0xff;
  target.fill(0, offset + length, offset + fieldBytes);
}

function latin1(bytes: Uint8Array, start: number, end: number): string {
  // A native slice for Buffers (every received message); names are short, so
  // String.fromCharCode beats a TextDecoder round-trip for plain arrays.
  if (Buffer.isBuffer(bytes)) return bytes.toString('latin1', start, end);
  let text = '';
  for (let i = start; i < end; i++) text += String.fromCharCode(bytes[i]);
  return text;
}
