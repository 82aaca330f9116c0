/**
 * IP address literals as spread.conf writes them (§8.1). Parsed by hand, not with DNS or
 * sockets, so the parser stays pure; the two output forms are the one humans and Node
 * sockets use (`canonicalAddress`) and the one the configuration hash needs (`hashAddress`).
 */

export type IpFamily = 'IPv4' | 'IPv6';

export interface IpAddress {
  family: IpFamily;
  /** 4 bytes for IPv4, 8 sixteen-bit groups for IPv6. */
  parts: number[];
  /** IPv6 zone (`%eth0`), kept for binding link-local addresses; never hashed. */
  scope: string | null;
}

const IPV4_PATTERN = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** Dotted quad; leading zeros refused because C's inet_aton would read them as octal. */
export function parseIpv4(text: string): IpAddress | null {
  const match = IPV4_PATTERN.exec(text);
  if (!match) return null;
  const parts: number[] = [];
  for (const octet of match.slice(1)) {
    if (octet.length > 1 && octet.startsWith('0')) return null;
    const value = Number(octet);
    if (value > 255) return null;
    parts.push(value);
  }
  return { family: 'IPv4', parts, scope: null };
}

function parseHexGroups(text: string): number[] | null {
  if (text === '') return [];
  const groups: number[] = [];
  for (const group of text.split(':')) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(group)) return null;
    groups.push(parseInt(group, 16));
  }
  return groups;
}

/** Standard IPv6 text: `::` compression, embedded IPv4 tail, optional `%zone`. */
export function parseIpv6(text: string): IpAddress | null {
  let body = text;
  let scope: string | null = null;
  const percent = text.indexOf('%');
  if (percent >= 0) {
    scope = text.slice(percent + 1);
    body = text.slice(0, percent);
    if (!/^[A-Za-z0-9_.-]+$/.test(scope)) return null;
  }
  // An embedded IPv4 tail (::ffff:1.2.3.4) is rewritten as its two hex groups.
  const lastColon = body.lastIndexOf(':');
  if (lastColon >= 0 && body.includes('.', lastColon)) {
    const tail = parseIpv4(body.slice(lastColon + 1));
    if (!tail) return null;
    const high = ((tail.parts[0] << 8) | tail.parts[1]).toString(16);
    const low = ((tail.parts[2] << 8) | tail.parts[3]).toString(16);
    body = `${body.slice(0, lastColon + 1)}${high}:${low}`;
  }
  const halves = body.split('::');
  if (halves.length > 2) return null;
  const head = parseHexGroups(halves[0]);
  const rest = halves.length === 2 ? parseHexGroups(halves[1]) : [];
  if (!head || !rest) return null;
  const explicit = head.length + rest.length;
  let groups: number[];
  if (halves.length === 2) {
    if (explicit > 7) return null;
    groups = [...head, ...new Array<number>(8 - explicit).fill(0), ...rest];
  } else {
    if (explicit !== 8) return null;
    groups = head;
  }
  return { family: 'IPv6', parts: groups, scope };
}

export function parseIpAddress(text: string): IpAddress | null {
  return parseIpv4(text) ?? (text.includes(':') ? parseIpv6(text) : null);
}

/** RFC 5952 text (longest zero run compressed, lowercase), plus the zone when present. */
export function canonicalAddress(address: IpAddress): string {
  if (address.family === 'IPv4') return address.parts.join('.');
  let bestStart = -1;
  let bestLength = 1; // a single zero group is not compressed (RFC 5952 §4.2.2)
  for (let start = 0; start < 8; ) {
    if (address.parts[start] !== 0) { start++; continue; }
    let end = start;
    while (end < 8 && address.parts[end] === 0) end++;
    if (end - start > bestLength) { bestStart = start; bestLength = end - start; }
    start = end;
  }
  const hex = address.parts.map((group) => group.toString(16));
  const text = bestStart < 0
    ? hex.join(':')
    : `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
  return address.scope === null ? text : `${text}%${address.scope}`;
}

/** §8.6: dotted decimal, or eight 4-digit lowercase hex groups with no compression and no zone. */
export function hashAddress(address: IpAddress): string {
  if (address.family === 'IPv4') return address.parts.join('.');
  return address.parts.map((group) => group.toString(16).padStart(4, '0')).join(':');
}

export function isMulticast(address: IpAddress): boolean {
  return address.family === 'IPv4'
    ? address.parts[0] >= 224 && address.parts[0] <= 239
    : (address.parts[0] & 0xff00) === 0xff00;
}

/** A configured (canonical) address on this host's loopback: 127.0.0.0/8 or ::1. */
export function isLoopbackAddress(text: string): boolean {
  return text.startsWith('127.') || text === '::1';
}

export function isUnspecified(address: IpAddress): boolean {
  return address.parts.every((part) => part === 0);
}
