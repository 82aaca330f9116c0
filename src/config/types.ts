/**
 * A parsed spread.conf (../shared/spread-protocol.md §8). Produced by `parseConfig`
 * (src/config/parser.ts), consumed by the daemon, the ring and the monitor.
 */

export type InterfaceKind = 'M' | 'C' | 'D';

export interface InterfaceSpec {
  /** Letters given; all three when the stanza line had no letter. */
  kinds: InterfaceKind[];
  address: string;
}

export interface DaemonSpec {
  /** Daemon name, at most 19 characters (§0). */
  name: string;
  /** Canonical address text (IPv4 dotted quad or IPv6). */
  address: string;
  /** VirtualID: configured, or derived from the name (§8.7). */
  vid: number;
  /** Interface stanza; empty when none was given. */
  interfaces: InterfaceSpec[];
  /** Index of the segment holding this daemon. */
  segmentIndex: number;
  /** Position across the whole file (segments in order, daemons in order): the ring and member-list order. */
  configIndex: number;
}

export interface SegmentSpec {
  port: number;
  addresses: string[];
  daemons: DaemonSpec[];
}

export interface MembershipTimeouts {
  tokenMs: number;
  hurryMs: number;
  aliveMs: number;
  joinMs: number;
  repMs: number;
  segMs: number;
  gatherMs: number;
  formMs: number;
  lookupMs: number;
}

/** tspread's security settings (docs/security.md); every file path as written in spread.conf. */
export interface SecuritySettings {
  /** Key file of the sealed ring (src/security/ring-keys.ts); null = ring datagrams in the clear. */
  ringKeyFile: string | null;
  /** TCP port of the TLS client listener; null = no TLS listener. */
  tlsPort: number | null;
  tlsCertificateFile: string | null;
  tlsKeyFile: string | null;
  /** CA that client certificates must chain to. */
  tlsCaFile: string | null;
  /** 'request': a client may present a certificate; 'require': TLS clients must. */
  tlsClientCertificates: 'none' | 'request' | 'require';
  /** Only TLS (and the Unix socket) for clients: no plain TCP listener. */
  requireTls: boolean;
  /** Users and password hashes for the PWORD method (src/security/passwords.ts). */
  passwordFile: string | null;
  /** Who may connect, join and multicast (src/security/access-control.ts); null = everyone. */
  accessControlFile: string | null;
}

export interface SpreadConfig {
  /** File the configuration came from, or '<default>'. */
  source: string;
  segments: SegmentSpec[];
  /** All daemons in configuration order (flattened segments). */
  daemons: DaemonSpec[];
  /** One-at-a-time hash of the canonical text (§8.6). */
  hash: number;
  /** Things Spread would only log while parsing (e.g. a daemon name ending in ';'); empty when none. */
  warnings?: string[];
  params: {
    debugFlags: string[];
    eventPriority: 'pDEBUG' | 'INFO' | 'WARNING' | 'ERROR' | 'CRITICAL' | 'FATAL';
    eventLogFile: string | null;
    eventTimeStamp: string | null;
    eventPreciseTimeStamp: boolean;
    dangerousMonitor: boolean;
    socketPortReuse: 'on' | 'off' | 'auto';
    runtimeDir: string | null;
    daemonUser: string | null;
    daemonGroup: string | null;
    allowedAuthMethods: string[];
    requiredAuthMethods: string[];
    accessControlPolicy: string;
    maxSessionMessages: number;
    /** tspread extension: byte bound on a session's queued output (slow-reader cut). */
    maxSessionBytes: number;
    /** tspread extension: largest 32·groups + data a tspread client may send (Spread's buffer holds 143152). */
    maxMessageBytes: number;
    /** tspread extension: largest UDP datagram the ring sends; null = not set (ring/from-config.ts picks). */
    datagramBytes: number | null;
    activeIpVersion: 'IPv4' | 'IPv6';
    window: number;
    personalWindow: number;
    acceleratedRing: boolean;
    acceleratedWindow: number;
    wideAreaNetwork: boolean;
    excludeSegAddrsFromHash: boolean;
    ignoreMulticastJoinErrors: boolean;
    timeouts: MembershipTimeouts;
    /** tspread extension: ring sealing, TLS, passwords, access control. */
    security: SecuritySettings;
  };
}
