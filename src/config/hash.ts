/**
 * The configuration hash daemons and spmonitor compare before talking to each other (§8.6),
 * and the VirtualID derived from a daemon name (§8.7). Both must match Spread bit for bit.
 */
import type { SpreadConfig } from './types.js';
import { hashAddress, parseIpAddress } from './address.js';

/**
 * Bob Jenkins' one-at-a-time hash as Spread runs it: over the text *and* its terminating
 * NUL, seeded with that byte count, each byte taken as a signed char (x86), mod 2^32.
 */
export function oneAtATimeHash(text: string): number {
  const bytes = Buffer.from(`${text}\0`, 'utf8');
  let hash = bytes.length >>> 0;
  for (const byte of bytes) {
    const signedByte = byte > 127 ? byte - 256 : byte;
    hash = (hash + signedByte) >>> 0;
    hash = (hash + (hash << 10)) >>> 0;
    hash = (hash ^ (hash >>> 6)) >>> 0;
  }
  hash = (hash + (hash << 3)) >>> 0;
  hash = (hash ^ (hash >>> 11)) >>> 0;
  hash = (hash + (hash << 15)) >>> 0;
  return hash;
}

/** §8.7: the name's hash, except that 0 and 0xFFFFFFFF are avoided. */
export function virtualId(name: string): number {
  const hash = oneAtATimeHash(name);
  if (hash === 0 || hash === 0xffffffff) return ((Buffer.byteLength(name, 'utf8') + 1) << 16) >>> 0;
  return hash;
}

function hashedAddress(text: string): string {
  const parsed = parseIpAddress(text);
  // DaemonSpec/SegmentSpec addresses always come from the parser, so this never falls back
  // in practice; hand-built configs with odd text are hashed as written.
  return parsed ? hashAddress(parsed) : text;
}

/** The exact text Spread hashes (§8.6). Interfaces and parameters other than the ring protocol are not in it. */
export function configHashText(config: SpreadConfig): string {
  let text = '';
  for (const segment of config.segments) {
    text += `Segment: port = ${segment.port};`;
    if (!config.params.excludeSegAddrsFromHash) {
      for (const address of segment.addresses) text += ` [${hashedAddress(address)}]`;
    }
    text += '\n';
    for (const daemon of segment.daemons) {
      text += `\t'${daemon.name}' [${hashedAddress(daemon.address)}] [${daemon.vid}]\n`;
    }
    text += '\n';
  }
  const protocol = config.params.acceleratedRing ? 'Accelerated Ring' : 'Original Ring';
  return `${text}Version: 5\nProtocol: ${protocol}\n`;
}

export function configHash(config: SpreadConfig): number {
  return oneAtATimeHash(configHashText(config));
}
