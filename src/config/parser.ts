/**
 * spread.conf parser (§8.2–§8.5): tokens in, a validated `SpreadConfig` out, or a
 * `ConfigError` pointing at `file:line:col`. Pure: no DNS, no file system.
 *
 * tspread extensions (accepted in addition to Spread 5.0.1's keywords; Spread itself would
 * reject a file using them, so keep them out of files shared with C daemons):
 *   MaxSessionBytes = NUMBER   byte bound on one session's queued output; a session over it
 *                              is cut like one over MaxSessionMessages. Default 64 MiB.
 *   MaxMessageBytes = NUMBER   largest 32·groups + data a tspread client may send.
 *                              Default 143152, Spread's real buffer size (§6.2). Values below
 *                              143152 are accepted but warned about: Spread clients may send that much.
 *   DatagramBytes = NUMBER     largest UDP datagram the ring sends, 256..65507. Default 1472
 *                              (Spread's packet size), larger when every daemon is on loopback
 *                              (ring/from-config.ts). Every daemon of a ring must agree.
 * None of them enters the configuration hash, which must stay equal to Spread's.
 *
 * Decisions where Spread's behaviour is not what tspread does (also in docs/configuration.md):
 *   - AcceleratedRing absent means false ("Original Ring"), whatever the segment count.
 *     Spread computes !WideAreaNetwork but applies it too late (§8.4), so a 5.0.1 daemon
 *     without the keyword runs and hashes the original ring; tspread matches that, and
 *     does not copy the switch Spread makes after a RELOAD.
 *   - A daemon given only by name is not looked up in DNS: `localhost` means 127.0.0.1
 *     (::1 under ActiveIPVersion = IPv6); any other name needs an address.
 *   - A daemon name over 19 characters is an error (Spread silently truncates it).
 *   - Duplicate VirtualIDs are an error (Spread does not check; they would break group ids).
 *   - Bad IPv4 octets, leading zeros and ports outside 1..65534 are errors.
 */
import type { DaemonSpec, InterfaceKind, InterfaceSpec, SegmentSpec, SpreadConfig } from './types.js';
import type { SourcePosition } from './errors.js';
import { tokenize, type AddressLiteral, type Token } from './lexer.js';
import { TokenCursor, describe } from './cursor.js';
import { isParameterKeyword } from './keywords.js';
import { canonicalAddress, isMulticast, isUnspecified, parseIpv4, parseIpv6, type IpAddress, type IpFamily } from './address.js';
import { ParameterReader } from './parameters.js';
import { configHash, virtualId } from './hash.js';
import { DAEMON_NAME_LENGTH_MAX, DEFAULT_SPREAD_PORT } from '../protocol/constants.js';

export { ConfigError } from './errors.js';

/** §0: MAX_PROC_NAME is 20 bytes including the NUL. */
export const MAX_DAEMON_NAME_LENGTH = DAEMON_NAME_LENGTH_MAX;
/** §6.1 limits. */
export const MAX_DAEMONS = 128;
export const MAX_SEGMENTS = 20;
export const MAX_SEGMENT_ADDRESSES = 5;
export const MAX_INTERFACES_PER_DAEMON = 10;

interface PendingDaemon {
  spec: DaemonSpec;
  ip: IpAddress;
  nameToken: Token;
  addressPosition: SourcePosition;
  vidPosition: SourcePosition;
}

interface PendingSegment {
  keyword: Token;
  port: number;
  addresses: { ip: IpAddress; token: Token }[];
  daemons: PendingDaemon[];
}

export function parseConfig(text: string, source: string): SpreadConfig {
  const cursor = new TokenCursor(tokenize(text, source), source);
  const parameters = new ParameterReader(cursor);
  const segments: PendingSegment[] = [];
  const warnings: string[] = [];

  while (cursor.peek().kind !== 'end') {
    const token = cursor.peek();
    if (token.kind === 'keyword' && token.text === 'Spread_Segment') {
      if (segments.length === MAX_SEGMENTS) cursor.failAt(token, `too many segments (at most ${MAX_SEGMENTS})`);
      segments.push(parseSegment(cursor, parameters.explicitIpVersion(), warnings));
    } else if (token.kind === 'keyword' && isParameterKeyword(token.text)) {
      parameters.read();
    } else {
      cursor.failAt(token, `expected Spread_Segment or a parameter name, found ${describe(token)}`);
    }
  }

  const daemons = segments.flatMap((segment) => segment.daemons);
  const end = cursor.peek();
  if (segments.length === 0) cursor.failAt(end, 'no Spread_Segment: a configuration needs at least one segment');
  if (daemons.length === 0) cursor.failAt(end, 'no daemons: a configuration needs at least one daemon');
  if (daemons.length > MAX_DAEMONS) {
    cursor.failAt(daemons[MAX_DAEMONS].nameToken, `too many daemons (at most ${MAX_DAEMONS})`);
  }
  checkUniqueness(cursor, daemons);
  checkOneFamily(cursor, segments, parameters.explicitIpVersion() ?? daemons[0].ip.family);

  const params = parameters.finish(segments.length, warnings);
  const config: SpreadConfig = {
    source,
    segments: segments.map((segment): SegmentSpec => ({
      port: segment.port,
      addresses: segment.addresses.map((address) => canonicalAddress(address.ip)),
      daemons: segment.daemons.map((daemon) => daemon.spec),
    })),
    daemons: daemons.map((daemon) => daemon.spec),
    hash: 0,
    params,
    warnings,
  };
  config.hash = configHash(config);
  return config;
}

function parseSegment(cursor: TokenCursor, ipVersion: IpFamily | null, warnings: string[]): PendingSegment {
  const keyword = cursor.next();
  const first = cursor.expect('address', 'after Spread_Segment (the segment address, optionally :port)');
  const segment: PendingSegment = {
    keyword,
    port: first.address?.port ?? DEFAULT_SPREAD_PORT,
    addresses: [{ ip: addressOf(first).ip, token: first }],
    daemons: [],
  };
  while (cursor.peek().kind === 'address') {
    const extra = cursor.next();
    if (addressOf(extra).port !== null) {
      cursor.failAt(extra, `only the first segment address may carry a port ('${extra.text}')`);
    }
    if (segment.addresses.length === MAX_SEGMENT_ADDRESSES) {
      cursor.failAt(extra, `too many segment addresses (at most ${MAX_SEGMENT_ADDRESSES})`);
    }
    segment.addresses.push({ ip: addressOf(extra).ip, token: extra });
  }
  cursor.expect('openBrace', 'to open the segment\'s daemon list');
  while (cursor.peek().kind !== 'closeBrace') {
    segment.daemons.push(parseDaemon(cursor, ipVersion, warnings));
  }
  cursor.next();
  return segment;
}

function addressOf(token: Token): AddressLiteral {
  if (!token.address) throw new Error(`internal: address token without address (${token.text})`);
  return token.address;
}

/** `daemon = dname [ VirtualID = NUMBER ] [ { iface... } ] [ ; ]` */
function parseDaemon(cursor: TokenCursor, ipVersion: IpFamily | null, warnings: string[]): PendingDaemon {
  const nameToken = cursor.next();
  let name: string;
  let addressToken: Token;
  if (nameToken.kind === 'address') {
    // An address alone names the daemon by its own text (zone stripped, §8.3).
    name = nameToken.text.replace(/%.*$/, '');
    addressToken = nameToken;
  } else if (nameToken.kind === 'string') {
    name = nameToken.text;
    if (cursor.peek().kind === 'address') {
      addressToken = cursor.next();
    } else {
      addressToken = { ...nameToken, kind: 'address', address: resolveWithoutDns(cursor, nameToken, ipVersion) };
    }
  } else if (nameToken.kind === 'keyword' || nameToken.kind === 'number') {
    return cursor.failAt(nameToken, `${describe(nameToken)} cannot be a daemon name (reserved word or number); quote it: "${nameToken.text}"`);
  } else {
    return cursor.failAt(nameToken, `expected a daemon name or address, found ${describe(nameToken)}`);
  }

  if (name.length === 0) cursor.failAt(nameToken, 'empty daemon name');
  if (name.length > MAX_DAEMON_NAME_LENGTH) {
    cursor.failAt(nameToken, `daemon name '${name}' is ${name.length} characters; at most ${MAX_DAEMON_NAME_LENGTH} are allowed`);
  }
  if (name.endsWith(';')) {
    warnings.push(`${cursor.source}:${nameToken.line}:${nameToken.column}: daemon name '${name}' ends with ';' (separate the ';' with a space if it was meant as a terminator)`);
  }
  const address = addressOf(addressToken);
  checkDaemonAddress(cursor, addressToken, address);

  let vid = virtualId(name);
  let vidPosition: SourcePosition = nameToken;
  if (cursor.isKeyword('VirtualID')) {
    vidPosition = cursor.next();
    cursor.expect('equals', 'after VirtualID');
    const value = cursor.expect('number', 'for VirtualID');
    vid = value.numberValue ?? 0;
    if (vid <= 0) cursor.failAt(value, 'VirtualID must be a positive integer');
  }
  const interfaces = cursor.peek().kind === 'openBrace' ? parseInterfaces(cursor, address.ip) : [];
  if (cursor.peek().kind === 'semicolon') cursor.next();

  return {
    spec: { name, address: canonicalAddress(address.ip), vid, interfaces, segmentIndex: 0, configIndex: 0 },
    ip: address.ip,
    nameToken,
    addressPosition: addressToken,
    vidPosition,
  };
}

/** Deviation from Spread (which asks DNS): only `localhost` is known without an address. */
function resolveWithoutDns(cursor: TokenCursor, nameToken: Token, ipVersion: IpFamily | null): AddressLiteral {
  if (nameToken.text === 'localhost') {
    const ip = ipVersion === 'IPv6' ? parseIpv6('::1') : parseIpv4('127.0.0.1');
    if (ip) return { ip, port: null };
  }
  return cursor.failAt(nameToken, `daemon '${nameToken.text}' has no address; tspread does not look names up in DNS, write '${nameToken.text} <address>'`);
}

function checkDaemonAddress(cursor: TokenCursor, token: Token, address: AddressLiteral): void {
  if (address.port !== null) cursor.failAt(token, `a daemon address cannot carry a port ('${token.text}'); the segment port applies`);
  if (isMulticast(address.ip)) cursor.failAt(token, `daemon address ${token.text} is a multicast address`);
  if (isUnspecified(address.ip)) cursor.failAt(token, `daemon address ${token.text} is the unspecified address`);
}

/** `{ { M | C | D } IPADDR ... }`: replaces the default "all kinds on the daemon address". */
function parseInterfaces(cursor: TokenCursor, daemonAddress: IpAddress): InterfaceSpec[] {
  const open = cursor.next();
  const interfaces: InterfaceSpec[] = [];
  let daemonTrafficCovered = false;
  while (cursor.peek().kind !== 'closeBrace') {
    const first = cursor.peek();
    const kinds: InterfaceKind[] = [];
    while (cursor.peek().kind === 'keyword' && /^[MCD]$/.test(cursor.peek().text)) {
      const letter = cursor.next().text as InterfaceKind;
      if (!kinds.includes(letter)) kinds.push(letter);
    }
    const addressToken = cursor.expect('address', 'in interface list (optional M/C/D letters, then an address)');
    const address = addressOf(addressToken);
    if (address.port !== null) cursor.failAt(addressToken, `an interface address cannot carry a port ('${addressToken.text}')`);
    if (interfaces.length === MAX_INTERFACES_PER_DAEMON) {
      cursor.failAt(first, `too many interfaces (at most ${MAX_INTERFACES_PER_DAEMON} per daemon)`);
    }
    const spec: InterfaceSpec = { kinds: kinds.length > 0 ? kinds : ['M', 'C', 'D'], address: canonicalAddress(address.ip) };
    const sameAsDaemon = canonicalAddress(address.ip) === canonicalAddress(daemonAddress);
    if (spec.kinds.includes('D') && (sameAsDaemon || isUnspecified(address.ip))) daemonTrafficCovered = true;
    interfaces.push(spec);
  }
  if (interfaces.length === 0) cursor.failAt(cursor.peek(), 'empty interface list: list at least one interface or drop the braces');
  if (!daemonTrafficCovered) {
    cursor.failAt(open, `interface list has no D-capable entry for the daemon address ${canonicalAddress(daemonAddress)} (or the unspecified address)`);
  }
  cursor.next();
  return interfaces;
}

function checkUniqueness(cursor: TokenCursor, daemons: PendingDaemon[]): void {
  const names = new Map<string, PendingDaemon>();
  const addresses = new Map<string, PendingDaemon>();
  const vids = new Map<number, PendingDaemon>();
  daemons.forEach((daemon, configIndex) => {
    const { spec } = daemon;
    const where = (other: PendingDaemon): string => `line ${other.nameToken.line}`;
    const sameName = names.get(spec.name);
    if (sameName) cursor.failAt(daemon.nameToken, `duplicate daemon name '${spec.name}' (first at ${where(sameName)})`);
    const addressKey = spec.address.replace(/%.*$/, '');
    const sameAddress = addresses.get(addressKey);
    if (sameAddress) cursor.failAt(daemon.addressPosition, `duplicate daemon address ${spec.address} (also daemon '${sameAddress.spec.name}' at ${where(sameAddress)})`);
    const sameVid = vids.get(spec.vid);
    if (sameVid) cursor.failAt(daemon.vidPosition, `duplicate VirtualID ${spec.vid} (also daemon '${sameVid.spec.name}' at ${where(sameVid)})`);
    names.set(spec.name, daemon);
    addresses.set(addressKey, daemon);
    vids.set(spec.vid, daemon);
    spec.configIndex = configIndex;
  });
}

/** §8.3: all addresses of one family, the active IP version. Also fills in segment indexes. */
function checkOneFamily(cursor: TokenCursor, segments: PendingSegment[], family: IpFamily): void {
  const check = (ip: IpAddress, position: SourcePosition, what: string): void => {
    if (ip.family !== family) cursor.failAt(position, `${what} is ${ip.family} but the active IP version is ${family}; all addresses must be of one family`);
  };
  segments.forEach((segment, segmentIndex) => {
    for (const address of segment.addresses) check(address.ip, address.token, `segment address ${address.token.text}`);
    for (const daemon of segment.daemons) {
      daemon.spec.segmentIndex = segmentIndex;
      check(daemon.ip, daemon.addressPosition, `daemon address ${daemon.spec.address}`);
      for (const iface of daemon.spec.interfaces) {
        const ip = parseIpv4(iface.address) ?? parseIpv6(iface.address);
        if (ip) check(ip, daemon.addressPosition, `interface address ${iface.address} of daemon '${daemon.spec.name}'`);
      }
    }
  });
}
