/**
 * The parameter lines of spread.conf (§8.4, §8.5) and the defaults Spread applies when a
 * line is absent. Values are collected while parsing; cross-parameter rules (timeouts all
 * or none, window ordering, LAN/WAN defaults) run once in `finish`, when the segment count
 * is known.
 */
import type { MembershipTimeouts, SecuritySettings, SpreadConfig } from './types.js';
import type { SourcePosition } from './errors.js';
import type { Token } from './lexer.js';
import { describe, type TokenCursor } from './cursor.js';
import { DEBUG_FLAG_NAMES, PRIORITY_KEYWORDS, TIMEOUT_KEYWORDS } from './keywords.js';
import type { IpFamily } from './address.js';
import { MESSAGE_BYTES_MAX, SESSION_MESSAGES_MAX_DEFAULT } from '../protocol/constants.js';

type Params = SpreadConfig['params'];
type TimeoutKeyword = (typeof TIMEOUT_KEYWORDS)[number];

/** The logging library starts with PRINT EXIT and the daemon adds CONFIGURATION (§8.4). */
export const DEFAULT_DEBUG_FLAGS: readonly string[] = ['EXIT', 'PRINT', 'CONFIGURATION'];
/** Format used when EventTimeStamp has no `= STRING` (or only EventPreciseTimeStamp is set). */
export const DEFAULT_EVENT_TIME_STAMP = '%m/%d/%y %H:%M:%S';
/** Spread's compiled-in values, used by a daemon started as root when the file says nothing. */
export const SPREAD_DEFAULT_RUNTIME_DIR = '/var/run/spread';
export const SPREAD_DEFAULT_DAEMON_USER = 'spread';
export const SPREAD_DEFAULT_DAEMON_GROUP = 'spread';
/** Spread's NULL and IP, the PWORD password method and CERT (a verified TLS client certificate). */
export const KNOWN_AUTH_METHODS: readonly string[] = ['NULL', 'IP', 'PWORD', 'CERT'];
export const MAX_MESSAGE_BYTES_SPREAD = MESSAGE_BYTES_MAX;
export const MIN_DATAGRAM_BYTES = 256;
/** Largest UDP payload over IPv4. */
export const MAX_DATAGRAM_BYTES = 65507;

/**
 * tspread's LAN defaults, shorter than Spread's (1250/500/250/250/625/500/1250/1250/30000),
 * chosen so that a crash is handled within 1 s (TokenTimeout + GatherTimeout + a few ms) and a
 * restarted daemon merges within about one JoinTimeout; the idle ring's heartbeat rotation
 * (every HurryTimeout) keeps a quiet ring from looking like token loss. See
 * docs/configuration.md and BENCHMARKS.md ("Membership"). Alive, Rep and Seg are unused by
 * tspread's ring (no SEG/REPRESENTED states) and keep Spread's values.
 */
export const LAN_TIMEOUTS: Readonly<MembershipTimeouts> = {
  tokenMs: 400, hurryMs: 120, aliveMs: 250, joinMs: 50, repMs: 625,
  segMs: 500, gatherMs: 200, formMs: 200, lookupMs: 1000,
};
/** Spread's WAN defaults (§8.5), kept: round trips across segments are not a LAN's. */
export const WAN_TIMEOUTS: Readonly<MembershipTimeouts> = {
  tokenMs: 5000, hurryMs: 1500, aliveMs: 250, joinMs: 250, repMs: 1250,
  segMs: 500, gatherMs: 2500, formMs: 2500, lookupMs: 45000,
};

const TIMEOUT_FIELDS: Readonly<Record<TimeoutKeyword, keyof MembershipTimeouts>> = {
  TokenTimeout: 'tokenMs', HurryTimeout: 'hurryMs', AliveTimeout: 'aliveMs', JoinTimeout: 'joinMs',
  RepTimeout: 'repMs', SegTimeout: 'segMs', GatherTimeout: 'gatherMs', FormTimeout: 'formMs',
  LookupTimeout: 'lookupMs',
};

/** Parameter values before defaults that depend on other parameters are applied. */
export function baseParams(): Params {
  return {
    debugFlags: [...DEFAULT_DEBUG_FLAGS],
    eventPriority: 'INFO',
    eventLogFile: null,
    eventTimeStamp: null,
    eventPreciseTimeStamp: false,
    dangerousMonitor: false,
    socketPortReuse: 'auto',
    runtimeDir: null,
    daemonUser: null,
    daemonGroup: null,
    allowedAuthMethods: ['NULL'],
    requiredAuthMethods: [],
    accessControlPolicy: 'PERMIT',
    maxSessionMessages: SESSION_MESSAGES_MAX_DEFAULT,
    maxSessionBytes: 64 * 1024 * 1024,
    maxMessageBytes: MAX_MESSAGE_BYTES_SPREAD,
    datagramBytes: null,
    activeIpVersion: 'IPv4',
    window: 160,
    personalWindow: 20,
    acceleratedRing: false,
    acceleratedWindow: 15,
    wideAreaNetwork: false,
    excludeSegAddrsFromHash: false,
    ignoreMulticastJoinErrors: false,
    timeouts: { ...LAN_TIMEOUTS },
    security: defaultSecuritySettings(),
  };
}

export function defaultSecuritySettings(): SecuritySettings {
  return {
    ringKeyFile: null,
    tlsPort: null,
    tlsCertificateFile: null,
    tlsKeyFile: null,
    tlsCaFile: null,
    tlsClientCertificates: 'none',
    requireTls: false,
    passwordFile: null,
    accessControlFile: null,
  };
}

export class ParameterReader {
  private readonly params = baseParams();
  private ipVersion: IpFamily | null = null;
  private wideAreaNetwork: boolean | null = null;
  private authKeywordSeen = false;
  private readonly timeouts = new Map<TimeoutKeyword, { value: number; at: SourcePosition }>();
  /** Where each parameter was last set, so cross-parameter errors point at a line. */
  private readonly setAt = new Map<string, SourcePosition>();
  private readonly warnings: string[] = [];

  constructor(private readonly cursor: TokenCursor) {}

  explicitIpVersion(): IpFamily | null {
    return this.ipVersion;
  }

  /** Reads one parameter line; the cursor is on its keyword. Later lines override earlier ones. */
  read(): void {
    const keyword = this.cursor.next();
    const name = keyword.text;
    this.setAt.set(name, keyword);
    if (name === 'EventPreciseTimeStamp') { this.params.eventPreciseTimeStamp = true; return; }
    if (name === 'EventTimeStamp') {
      this.params.eventTimeStamp = this.cursor.peek().kind === 'equals'
        ? (this.cursor.next(), this.stringValue(keyword))
        : DEFAULT_EVENT_TIME_STAMP;
      return;
    }
    this.cursor.expect('equals', `after ${name}`);
    if ((TIMEOUT_KEYWORDS as readonly string[]).includes(name)) {
      this.timeouts.set(name as TimeoutKeyword, { value: this.positive(keyword), at: keyword });
      return;
    }
    this.readValue(keyword);
  }

  private readValue(keyword: Token): void {
    const p = this.params;
    switch (keyword.text) {
      case 'DebugFlags': p.debugFlags = this.debugFlags(); return;
      case 'EventPriority': p.eventPriority = this.oneOf(keyword, PRIORITY_KEYWORDS); return;
      case 'EventLogFile': p.eventLogFile = this.stringValue(keyword); return;
      case 'DangerousMonitor': p.dangerousMonitor = this.bool(keyword); return;
      case 'SocketPortReuse': p.socketPortReuse = this.oneOf(keyword, ['on', 'off', 'auto'] as const); return;
      case 'RuntimeDir': p.runtimeDir = this.stringValue(keyword); return;
      case 'DaemonUser': p.daemonUser = this.stringValue(keyword); return;
      case 'DaemonGroup': p.daemonGroup = this.stringValue(keyword); return;
      case 'AllowedAuthMethods': this.authMethods(keyword, 'allowed'); return;
      case 'RequiredAuthMethods': this.authMethods(keyword, 'required'); return;
      case 'AccessControlPolicy': {
        const policy = this.stringToken(keyword);
        if (policy.text !== 'PERMIT') this.cursor.failAt(policy, `unknown AccessControlPolicy '${policy.text}' (only PERMIT is built in)`);
        p.accessControlPolicy = policy.text;
        return;
      }
      case 'MaxSessionMessages': p.maxSessionMessages = this.number(keyword); return;
      case 'MaxSessionBytes': p.maxSessionBytes = this.positive(keyword); return;
      case 'MaxMessageBytes': p.maxMessageBytes = this.positive(keyword); return;
      case 'DatagramBytes': p.datagramBytes = this.number(keyword); return;
      case 'ActiveIPVersion': {
        const version = this.stringToken(keyword);
        const family = version.text.toLowerCase() === 'ipv4' ? 'IPv4' : version.text.toLowerCase() === 'ipv6' ? 'IPv6' : null;
        if (!family) this.cursor.failAt(version, `expected IPv4 or IPv6 for ActiveIPVersion, found ${describe(version)}`);
        this.ipVersion = family;
        return;
      }
      case 'Window': p.window = this.positive(keyword); return;
      case 'PersonalWindow': p.personalWindow = this.positive(keyword); return;
      case 'AcceleratedRing': p.acceleratedRing = this.bool(keyword); return;
      case 'AcceleratedWindow': p.acceleratedWindow = this.number(keyword); return;
      case 'WideAreaNetwork': this.wideAreaNetwork = this.bool(keyword); return;
      case 'ExcludeSegAddrsFromHash': p.excludeSegAddrsFromHash = this.bool(keyword); return;
      case 'IgnoreMulticastJoinErrors': p.ignoreMulticastJoinErrors = this.bool(keyword); return;
      case 'RingKeyFile': p.security.ringKeyFile = this.stringValue(keyword); return;
      case 'TlsPort': p.security.tlsPort = this.positive(keyword); return;
      case 'TlsCertificateFile': p.security.tlsCertificateFile = this.stringValue(keyword); return;
      case 'TlsKeyFile': p.security.tlsKeyFile = this.stringValue(keyword); return;
      case 'TlsCaFile': p.security.tlsCaFile = this.stringValue(keyword); return;
      case 'TlsClientCertificates': {
        const mode = this.stringToken(keyword);
        if (mode.text !== 'none' && mode.text !== 'request' && mode.text !== 'require') {
          this.cursor.failAt(mode, `expected none, request or require for TlsClientCertificates, found ${describe(mode)}`);
        }
        p.security.tlsClientCertificates = mode.text;
        return;
      }
      case 'RequireTls': p.security.requireTls = this.bool(keyword); return;
      case 'PasswordFile': p.security.passwordFile = this.stringValue(keyword); return;
      case 'AccessControlFile': p.security.accessControlFile = this.stringValue(keyword); return;
      default: this.cursor.failAt(keyword, `internal: no reader for parameter ${keyword.text}`);
    }
  }

  /** Applies the rules that need the whole file; `warnings` receives what Spread would only log. */
  finish(segmentCount: number, warnings: string[]): Params {
    const p = this.params;
    const source = this.cursor.source;
    p.wideAreaNetwork = this.wideAreaNetwork ?? segmentCount > 1;
    p.timeouts = this.resolveTimeouts(p.wideAreaNetwork);
    p.activeIpVersion = this.ipVersion ?? p.activeIpVersion;
    if (p.eventPreciseTimeStamp && p.eventTimeStamp === null) p.eventTimeStamp = DEFAULT_EVENT_TIME_STAMP;
    if (p.personalWindow > p.window) {
      this.failAtSetting(['PersonalWindow', 'Window'], `PersonalWindow (${p.personalWindow}) must not exceed Window (${p.window})`);
    }
    if (p.acceleratedRing && p.acceleratedWindow > p.personalWindow) {
      this.failAtSetting(['AcceleratedWindow', 'PersonalWindow', 'AcceleratedRing'],
        `AcceleratedWindow (${p.acceleratedWindow}) must not exceed PersonalWindow (${p.personalWindow}) when AcceleratedRing is set`);
    }
    if (p.datagramBytes !== null && (p.datagramBytes < MIN_DATAGRAM_BYTES || p.datagramBytes > MAX_DATAGRAM_BYTES)) {
      this.failAtSetting(['DatagramBytes'], `DatagramBytes must be ${MIN_DATAGRAM_BYTES}..${MAX_DATAGRAM_BYTES}, not ${p.datagramBytes}`);
    }
    this.checkSecurity(p.security);
    if (p.maxMessageBytes < MAX_MESSAGE_BYTES_SPREAD) {
      this.warnings.push(`${this.where('MaxMessageBytes')}MaxMessageBytes ${p.maxMessageBytes} is below ${MAX_MESSAGE_BYTES_SPREAD}: Spread clients may send messages tspread will refuse`);
    }
    warnings.push(...this.warnings.map((warning) => (warning.startsWith(source) ? warning : `${source}: ${warning}`)));
    return p;
  }

  /** TLS needs a certificate and key; client certificates need a CA; RequireTls needs TLS. */
  private checkSecurity(security: SecuritySettings): void {
    if (security.tlsPort !== null && security.tlsPort > 65534) this.failAtSetting(['TlsPort'], `TlsPort must be 1..65534, not ${security.tlsPort}`);
    if (security.tlsPort !== null && (security.tlsCertificateFile === null || security.tlsKeyFile === null)) {
      this.failAtSetting(['TlsPort'], 'TlsPort needs TlsCertificateFile and TlsKeyFile');
    }
    if (security.tlsClientCertificates !== 'none' && security.tlsCaFile === null) {
      this.failAtSetting(['TlsClientCertificates'], 'TlsClientCertificates needs TlsCaFile (the CA client certificates chain to)');
    }
    if (security.requireTls && security.tlsPort === null) this.failAtSetting(['RequireTls'], 'RequireTls needs TlsPort');
  }

  private resolveTimeouts(wideAreaNetwork: boolean): MembershipTimeouts {
    const defaults = wideAreaNetwork ? WAN_TIMEOUTS : LAN_TIMEOUTS;
    if (this.timeouts.size === 0) return { ...defaults };
    const missing = TIMEOUT_KEYWORDS.filter((keyword) => !this.timeouts.has(keyword));
    if (missing.length > 0) {
      const first = [...this.timeouts.values()].sort((a, b) => a.at.line - b.at.line || a.at.column - b.at.column)[0];
      this.cursor.failAt(first.at, `membership timeouts are all or nothing: missing ${missing.join(', ')}`);
    }
    const timeouts = { ...defaults };
    for (const [keyword, { value }] of this.timeouts) timeouts[TIMEOUT_FIELDS[keyword]] = value;
    return timeouts;
  }

  private where(name: string): string {
    const at = this.setAt.get(name);
    return at ? `${this.cursor.source}:${at.line}:${at.column}: ` : '';
  }

  private failAtSetting(names: string[], message: string): never {
    const at = names.map((name) => this.setAt.get(name)).find((position) => position !== undefined);
    // Only reachable through explicit settings, so a position exists; fall back to line 1 defensively.
    return this.cursor.failAt(at ?? { line: 1, column: 1 }, message);
  }

  private number(keyword: Token): number {
    const token = this.cursor.expect('number', `for ${keyword.text} (1-9 decimal digits)`);
    return token.numberValue ?? 0;
  }

  private positive(keyword: Token): number {
    const token = this.cursor.peek();
    const value = this.number(keyword);
    if (value <= 0) this.cursor.failAt(token, `${keyword.text} must be greater than 0`);
    return value;
  }

  private bool(keyword: Token): boolean {
    const token = this.cursor.next();
    if (token.kind === 'keyword' && (token.text === 'true' || token.text === 'yes')) return true;
    if (token.kind === 'keyword' && (token.text === 'false' || token.text === 'no')) return false;
    return this.cursor.failAt(token, `expected true/yes or false/no for ${keyword.text}, found ${describe(token)}`);
  }

  private oneOf<T extends string>(keyword: Token, choices: readonly T[]): T {
    const token = this.cursor.next();
    const choice = choices.find((candidate) => token.kind === 'keyword' && token.text === candidate);
    if (choice === undefined) this.cursor.failAt(token, `expected one of ${choices.join(' ')} for ${keyword.text}, found ${describe(token)}`);
    return choice;
  }

  private stringToken(keyword: Token): Token {
    const token = this.cursor.next();
    if (token.kind !== 'string') this.cursor.failAt(token, `expected a string for ${keyword.text}, found ${describe(token)}`);
    return token;
  }

  private stringValue(keyword: Token): string {
    return this.stringToken(keyword).text;
  }

  /** `{ FLAG | ! FLAG ... }`: the line replaces the startup mask entirely (§8.4). */
  private debugFlags(): string[] {
    this.cursor.expect('openBrace', 'after DebugFlags =');
    const enabled = new Set<string>();
    while (this.cursor.peek().kind !== 'closeBrace') {
      let token = this.cursor.next();
      let negated = false;
      if (token.kind === 'bang') { negated = true; token = this.cursor.next(); }
      const flag = token.kind === 'keyword' ? token.text : null;
      const names = flag === 'ALL' ? DEBUG_FLAG_NAMES : flag === 'NONE' ? [] : DEBUG_FLAG_NAMES.filter((known) => known === flag);
      if (flag === null || (names.length === 0 && flag !== 'NONE')) {
        this.cursor.failAt(token, `expected a debug flag (${DEBUG_FLAG_NAMES.join(' ')} ALL NONE), found ${describe(token)}`);
      }
      if (flag === 'NONE' && !negated) enabled.clear();
      for (const name of names) {
        if (negated) enabled.delete(name); else enabled.add(name);
      }
    }
    this.cursor.next();
    return DEBUG_FLAG_NAMES.filter((name) => enabled.has(name));
  }

  /** The first auth keyword disables NULL; Required marks methods without enabling them (§8.4). */
  private authMethods(keyword: Token, list: 'allowed' | 'required'): void {
    const token = this.stringToken(keyword);
    if (!this.authKeywordSeen) {
      this.params.allowedAuthMethods = [];
      this.authKeywordSeen = true;
    }
    const target = list === 'allowed' ? this.params.allowedAuthMethods : this.params.requiredAuthMethods;
    for (const method of token.text.split(/\s+/).filter((name) => name !== '')) {
      if (!KNOWN_AUTH_METHODS.includes(method)) {
        this.warnings.push(`${this.cursor.source}:${token.line}:${token.column}: unknown authentication method '${method}' in ${keyword.text}`);
      }
      if (!target.includes(method)) target.push(method);
    }
  }
}
