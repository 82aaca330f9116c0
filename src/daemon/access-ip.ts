/**
 * The `IP` authentication method's rule file, spread.access_ip (§2.5). Pure: the
 * daemon adapter finds and reads the file; this module parses and matches.
 *
 * File format (Spread's auth-ip.c): one rule per line, `a.b.c.d[/prefix]`, or the
 * keywords `unix` (Unix-domain sessions) and `local` (127.0.0.0/8); `#` starts a
 * comment; blank lines are ignored. Unparsable lines are reported and skipped.
 *
 * Deviations from Spread (deliberate):
 *   - Spread records no peer address for Unix-domain sessions and so denies them even
 *     when the file says `unix` (§13 item 6); tspread honours the keyword.
 *   - An IPv4-mapped IPv6 peer (`::ffff:a.b.c.d`, how Node reports IPv4 peers on a
 *     dual-stack listener) is matched as the IPv4 address it is. Other IPv6 peers are
 *     always denied, as in Spread.
 */

/** Where a session came from. */
export type PeerAddress =
  | { kind: 'unix' }
  | { kind: 'tcp'; address: string; tls?: TlsPeer };

/** A session that came over the TLS listener. */
export interface TlsPeer {
  /** Subject CN of its client certificate, verified against the CA; null when none. */
  certificate: string | null;
  /** TlsClientCertificates = require: the handshake runs CERT whatever the client asked. */
  certificateRequired?: boolean;
}

export interface AccessIpRules {
  allowUnix: boolean;
  /** IPv4 networks as (network, mask), both unsigned 32-bit. */
  networks: Array<{ network: number; mask: number }>;
  /** Lines that could not be parsed (1-based line numbers). */
  errors: Array<{ line: number; text: string }>;
}

/** Candidate file names, searched in this order (§2.5). */
export const ACCESS_IP_FILES = ['spread.access_ip', './spread.access_ip', '/etc/spread.access_ip'] as const;

const LOCAL_NETWORK = { network: 0x7f000000, mask: 0xff000000 };

export function parseIpv4Number(text: string): number | null {
  const parts = text.split('.');
  if (parts.length !== 4) return null;
  let value = 0;
  for (const part of parts) {
    if (!/^[0-9]{1,3}$/.test(part)) return null;
    const octet = Number(part);
    if (octet > 255) return null;
    value = value * 256 + octet;
  }
  return value >>> 0;
}

function prefixMask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

export function parseAccessIp(text: string): AccessIpRules {
  const rules: AccessIpRules = { allowUnix: false, networks: [], errors: [] };
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, index) => {
    const hash = raw.indexOf('#');
    const line = (hash >= 0 ? raw.slice(0, hash) : raw).trim();
    if (line.length === 0) return;
    if (line === 'unix') {
      rules.allowUnix = true;
      return;
    }
    if (line === 'local') {
      rules.networks.push(LOCAL_NETWORK);
      return;
    }
    const slash = line.indexOf('/');
    const addressText = slash >= 0 ? line.slice(0, slash) : line;
    const prefixText = slash >= 0 ? line.slice(slash + 1) : '32';
    const address = parseIpv4Number(addressText);
    const prefix = /^[0-9]{1,2}$/.test(prefixText) ? Number(prefixText) : -1;
    if (address === null || prefix < 0 || prefix > 32) {
      rules.errors.push({ line: index + 1, text: raw });
      return;
    }
    const mask = prefixMask(prefix);
    rules.networks.push({ network: (address & mask) >>> 0, mask });
  });
  return rules;
}

/** IPv4 address of a peer as an unsigned number, or null (IPv6, Unix, unparsable). */
export function peerIpv4(peer: PeerAddress): number | null {
  if (peer.kind !== 'tcp') return null;
  const mapped = /^::ffff:([0-9.]+)$/i.exec(peer.address);
  return parseIpv4Number(mapped ? mapped[1] : peer.address);
}

/** True when the rules let this peer in. No rules loaded (null) denies everyone, as in Spread. */
export function accessIpAllows(rules: AccessIpRules | null, peer: PeerAddress): boolean {
  if (rules === null) return false;
  if (peer.kind === 'unix') return rules.allowUnix;
  const address = peerIpv4(peer);
  if (address === null) return false;
  for (const { network, mask } of rules.networks) {
    if (((address & mask) >>> 0) === network) return true;
  }
  return false;
}
