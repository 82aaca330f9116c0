/**
 * Connection handshake bytes (§2). Encoders for both sides and the parsers a
 * client needs; the daemon's incremental reader lives in src/daemon/handshake.ts
 * because its rules (single recv, silent closes) are about timing, not layout.
 */
import { AUTH_CHOICE_BYTES, AUTH_METHODS_MAX, AUTH_NAME_BYTES } from './constants.js';

export interface LibraryVersion {
  major: number;
  minor: number;
  patch: number;
}

/** major*10000 + minor*100 + patch, as the daemon compares versions (§2.3). */
export function versionNumber(version: LibraryVersion): number {
  return version.major * 10000 + version.minor * 100 + version.patch;
}

/** A handshake byte read as C's signed char: versions, lengths, and reject codes (negative, §2.4, §2.7). */
export function signedByte(byte: number): number {
  return byte >= 0x80 ? byte - 0x100 : byte;
}

/** Libraries newer than 3.14 send (and receive) a patch byte (§2.9). */
export function sendsPatchByte(major: number, minor: number): boolean {
  return major * 10000 + minor * 100 > 31400;
}

export interface ConnectRequest {
  version: LibraryVersion;
  membership: boolean;
  priority: number;
  privateName: string;
}

export function encodeConnectRequest(request: ConnectRequest): Uint8Array {
  const { version } = request;
  const withPatch = sendsPatchByte(version.major, version.minor);
  const name = Buffer.from(request.privateName, 'latin1');
  const out = Buffer.alloc((withPatch ? 5 : 4) + name.length);
  let offset = 0;
  out[offset++] = version.major;
  out[offset++] = version.minor;
  if (withPatch) out[offset++] = version.patch;
  out[offset++] = (request.membership ? 1 : 0) | (request.priority >= 1 ? 0x10 : 0);
  out[offset++] = name.length;
  name.copy(out, offset);
  return out;
}

/** Auth-method list: one length byte, then each name followed by a space (§2.4). */
export function encodeAuthList(methods: readonly string[]): Uint8Array {
  const text = methods.map((method) => `${method} `).join('');
  const out = Buffer.alloc(1 + text.length);
  out[0] = text.length;
  out.write(text, 1, 'latin1');
  return out;
}

export function parseAuthList(text: string): string[] {
  return text.split(' ').filter((name) => name.length > 0);
}

/** The 90-byte auth choice: up to 3 NUL-terminated names in 30-byte slots (§2.5). */
export function encodeAuthChoice(methods: readonly string[]): Uint8Array {
  if (methods.length > AUTH_METHODS_MAX - 1) {
    // Spread's daemon walks slots until an empty one; always leave one empty (§13 item 10).
    throw new RangeError(`at most ${AUTH_METHODS_MAX - 1} auth methods may be requested`);
  }
  const out = Buffer.alloc(AUTH_CHOICE_BYTES);
  methods.forEach((method, slot) => {
    out.write(method.slice(0, AUTH_NAME_BYTES - 1), slot * AUTH_NAME_BYTES, 'latin1');
  });
  return out;
}

/** Names in a 90-byte choice, stopping at the first empty slot and never reading past the buffer. */
export function parseAuthChoice(bytes: Uint8Array): string[] {
  const names: string[] = [];
  for (let slot = 0; slot < AUTH_METHODS_MAX; slot++) {
    const start = slot * AUTH_NAME_BYTES;
    if (start >= bytes.length || bytes[start] === 0) break;
    let end = start;
    while (end < start + AUTH_NAME_BYTES && end < bytes.length && bytes[end] !== 0) end++;
    names.push(Buffer.from(bytes.subarray(start, end)).toString('latin1'));
  }
  return names;
}

export interface Accept {
  daemonVersion: LibraryVersion;
  privateGroup: string;
}

/** Accept message (§2.6); the patch byte only goes to libraries ≥ 3.15.0. */
export function encodeAccept(accept: Accept, clientSendsPatch: boolean): Uint8Array {
  const name = Buffer.from(accept.privateGroup, 'latin1');
  const head = clientSendsPatch
    ? [1, accept.daemonVersion.major, accept.daemonVersion.minor, accept.daemonVersion.patch]
    : [1, accept.daemonVersion.major, accept.daemonVersion.minor];
  return Buffer.concat([Buffer.from(head), Buffer.from([name.length]), name]);
}
