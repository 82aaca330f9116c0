import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tokenize, type Token } from '../src/config/lexer.js';
import { ConfigError, parseConfig } from '../src/config/parser.js';
import { defaultConfig } from '../src/config/defaults.js';
import { chooseIdentity, configDiff, loadConfig } from '../src/config/load.js';
import { LAN_TIMEOUTS, WAN_TIMEOUTS } from '../src/config/parameters.js';
import { virtualId } from '../src/config/hash.js';
import { canonicalAddress, hashAddress, parseIpAddress } from '../src/config/address.js';

const FIXTURES = join(import.meta.dirname, 'fixtures', 'config');
const fixture = (name: string): string => readFileSync(join(FIXTURES, name), 'utf8');
const ONE_DAEMON = 'Spread_Segment 127.0.0.255:4803 {\n\tlocalhost 127.0.0.1\n}\n';

/** A one-daemon file with `params` lines in front. */
const withParams = (...params: string[]): string => `${params.join('\n')}\n${ONE_DAEMON}`;

function parseError(text: string, source = 'test.conf'): ConfigError {
  try {
    parseConfig(text, source);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

const kinds = (tokens: Token[]): string[] => tokens.map((token) => `${token.kind}:${token.text}`);

describe('lexer', () => {
  it('takes the longest bare word, so `=` glued to a number is one token', () => {
    expect(kinds(tokenize('Window =160', 'f'))).toEqual(['keyword:Window', 'string:=160', 'end:end of file']);
    expect(kinds(tokenize('Window=160', 'f'))).toEqual(['string:Window=160', 'end:end of file']);
    expect(kinds(tokenize('Window = 160', 'f'))).toEqual(['keyword:Window', 'equals:=', 'number:160', 'end:end of file']);
  });

  it('keeps `:` and `;` inside bare words but stops at braces and brackets', () => {
    expect(kinds(tokenize('a:b;c{x}', 'f'))).toEqual(['string:a:b;c', 'openBrace:{', 'string:x', 'closeBrace:}', 'end:end of file']);
    expect(kinds(tokenize('d1 ; d2;', 'f'))).toEqual(['string:d1', 'semicolon:;', 'string:d2;', 'end:end of file']);
  });

  it('tracks line and column across comments and blank lines', () => {
    const tokens = tokenize('# comment {\n\n  Window # trailing\n\t= 5', 'f');
    expect(tokens.map((token) => [token.text, token.line, token.column])).toEqual([
      ['Window', 3, 3], ['=', 4, 2], ['5', 4, 4], ['end of file', 4, 5],
    ]);
  });

  it('ends a bare word at `#`', () => {
    expect(kinds(tokenize('abc#def\nxyz', 'f'))).toEqual(['string:abc', 'string:xyz', 'end:end of file']);
  });

  it('reads quoted strings with either quote, keeping spaces and `#`, never as keywords', () => {
    const tokens = tokenize(`"a b # c" 'Window' ""`, 'f');
    expect(tokens.slice(0, 3).map((token) => [token.kind, token.text, token.quoted])).toEqual([
      ['string', 'a b # c', true], ['string', 'Window', true], ['string', '', true],
    ]);
  });

  it('rejects an unterminated quoted string at its opening quote', () => {
    expect(() => tokenize('x "abc\n"', 'f.conf')).toThrow('f.conf:1:3: unterminated "-quoted string');
  });

  it('matches keywords case-sensitively, booleans and tri-states in any case', () => {
    expect(kinds(tokenize('window WINDOW Window', 'f')).slice(0, 3)).toEqual(['string:window', 'string:WINDOW', 'keyword:Window']);
    expect(kinds(tokenize('TRUE Yes off AUTO', 'f')).slice(0, 4)).toEqual(['keyword:true', 'keyword:yes', 'keyword:off', 'keyword:auto']);
    expect(kinds(tokenize('M C D m', 'f')).slice(0, 4)).toEqual(['keyword:M', 'keyword:C', 'keyword:D', 'string:m']);
  });

  it('reads NUMBER as 1 to 9 digits; longer runs are plain words', () => {
    expect(kinds(tokenize('123456789 1234567890', 'f')).slice(0, 2)).toEqual(['number:123456789', 'string:1234567890']);
  });

  it('reads IPv4 and IPv6 addresses with and without ports', () => {
    const tokens = tokenize('127.0.0.1 10.1.2.3:4803 ::1 fe80::1%eth0 [::1]:4803 [2001:db8::7]', 'f');
    expect(tokens.slice(0, 6).map((token) => [token.kind, token.address?.ip.family, token.address?.port])).toEqual([
      ['address', 'IPv4', null], ['address', 'IPv4', 4803], ['address', 'IPv6', null],
      ['address', 'IPv6', null], ['address', 'IPv6', 4803], ['address', 'IPv6', null],
    ]);
    expect(tokens[3].address?.ip.scope).toBe('eth0');
  });

  it('rejects malformed addresses and ports with their position', () => {
    expect(() => tokenize('\n  300.1.1.1', 'f')).toThrow('f:2:3: bad IPv4 address');
    expect(() => tokenize('1.2.3.04', 'f')).toThrow('f:1:1: bad IPv4 address');
    expect(() => tokenize('1.2.3.4:65535', 'f')).toThrow('f:1:1: bad port 65535');
    expect(() => tokenize('x [zz::1]:1', 'f')).toThrow('f:1:3: bad IPv6 address');
    expect(() => tokenize('x ]', 'f')).toThrow("f:1:3: unexpected ']'");
  });
});

describe('address literals', () => {
  it('canonicalises IPv6 per RFC 5952 and writes the hash form uncompressed', () => {
    const cases: [string, string, string][] = [
      ['::1', '::1', '0000:0000:0000:0000:0000:0000:0000:0001'],
      ['::', '::', '0000:0000:0000:0000:0000:0000:0000:0000'],
      ['2001:DB8:0:0:1:0:0:1', '2001:db8::1:0:0:1', '2001:0db8:0000:0000:0001:0000:0000:0001'],
      ['::ffff:10.1.2.3', '::ffff:a01:203', '0000:0000:0000:0000:0000:ffff:0a01:0203'],
      ['1:0:2:3:4:5:6:7', '1:0:2:3:4:5:6:7', '0001:0000:0002:0003:0004:0005:0006:0007'],
    ];
    for (const [text, canonical, hashed] of cases) {
      const ip = parseIpAddress(text);
      expect(ip && [canonicalAddress(ip), hashAddress(ip)]).toEqual([canonical, hashed]);
    }
    for (const bad of ['1::2::3', '1:2:3:4:5:6:7:8:9', '12345::', ':1', '1.2.3', '::1.2.3.256']) {
      expect(parseIpAddress(bad)).toBeNull();
    }
  });
});

describe('parser: structure', () => {
  it('parses the three-daemon fixture in order with derived VirtualIDs', () => {
    const config = parseConfig(fixture('three-daemons.conf'), 'three-daemons.conf');
    expect(config.source).toBe('three-daemons.conf');
    expect(config.segments).toHaveLength(1);
    expect(config.segments[0].port).toBe(4803);
    expect(config.segments[0].addresses).toEqual(['127.0.0.255']);
    expect(config.daemons.map((daemon) => [daemon.name, daemon.address, daemon.configIndex, daemon.segmentIndex])).toEqual([
      ['d1', '127.0.0.1', 0, 0], ['d2', '127.0.0.2', 1, 0], ['d3', '127.0.0.3', 2, 0],
    ]);
    expect(config.daemons[0].vid).toBe(1552775919);
    expect(config.daemons[1].vid).toBe(348480928);
    expect(config.daemons[2].vid).toBe(virtualId('d3'));
    expect(config.daemons[0].interfaces).toEqual([]);
  });

  it('flattens two segments in order and defaults to WAN', () => {
    const config = parseConfig(fixture('two-segments.conf'), 'two-segments.conf');
    expect(config.segments.map((segment) => segment.daemons.map((daemon) => daemon.name))).toEqual([['d1', 'd2'], ['d3']]);
    expect(config.daemons.map((daemon) => [daemon.name, daemon.segmentIndex, daemon.configIndex])).toEqual([
      ['d1', 0, 0], ['d2', 0, 1], ['d3', 1, 2],
    ]);
    expect(config.params.wideAreaNetwork).toBe(true);
    expect(config.params.timeouts).toEqual(WAN_TIMEOUTS);
  });

  it('defaults the segment port to 4803 and accepts several segment addresses', () => {
    const config = parseConfig('Spread_Segment 225.0.0.1 225.0.0.2 {\n a 10.0.0.1\n}', 'f');
    expect(config.segments[0]).toMatchObject({ port: 4803, addresses: ['225.0.0.1', '225.0.0.2'] });
  });

  it('names an address-only daemon by its address and resolves a bare `localhost` without DNS', () => {
    const config = parseConfig('Spread_Segment 127.0.0.255 {\n 127.0.0.7\n localhost ;\n}', 'f');
    expect(config.daemons.map((daemon) => [daemon.name, daemon.address])).toEqual([['127.0.0.7', '127.0.0.7'], ['localhost', '127.0.0.1']]);
  });

  it('reads `name` followed by an address on the next line as one daemon (the grammar is greedy)', () => {
    const config = parseConfig('Spread_Segment 127.0.0.255 {\n localhost\n 10.0.0.9\n}', 'f');
    expect(config.daemons.map((daemon) => [daemon.name, daemon.address])).toEqual([['localhost', '10.0.0.9']]);
  });

  it('uses ; , VirtualID or an interface block to separate bare names from the next daemon', () => {
    const config = parseConfig('Spread_Segment 127.0.0.255 {\n a 10.0.0.1 VirtualID = 9 b 10.0.0.2 { 10.0.0.2 } c 10.0.0.3 ; d 10.0.0.4\n}', 'f');
    expect(config.daemons.map((daemon) => [daemon.name, daemon.vid])).toEqual([['a', 9], ['b', virtualId('b')], ['c', virtualId('c')], ['d', virtualId('d')]]);
  });

  it('allows a reserved word as a quoted daemon name', () => {
    const config = parseConfig('Spread_Segment 127.0.0.255 {\n "Window" 10.0.0.1\n}', 'f');
    expect(config.daemons[0].name).toBe('Window');
  });

  it('warns (like Spread) about a daemon name with a glued `;`', () => {
    const config = parseConfig('Spread_Segment 127.0.0.255 {\n a; 10.0.0.1\n}', 'w.conf');
    expect(config.daemons[0].name).toBe('a;');
    expect(config.warnings).toEqual([expect.stringContaining("w.conf:2:2: daemon name 'a;' ends with ';'")]);
  });

  it('reads interface stanzas: letters as separate tokens, none meaning all three', () => {
    const config = parseConfig(fixture('full.conf'), 'full.conf');
    expect(config.daemons[0].interfaces).toEqual([
      { kinds: ['D'], address: '10.0.0.1' },
      { kinds: ['C', 'M'], address: '0.0.0.0' },
    ]);
    const plain = parseConfig('Spread_Segment 127.0.0.255 {\n a 10.0.0.1 { 10.0.0.1 0.0.0.0 }\n}', 'f');
    expect(plain.daemons[0].interfaces).toEqual([
      { kinds: ['M', 'C', 'D'], address: '10.0.0.1' },
      { kinds: ['M', 'C', 'D'], address: '0.0.0.0' },
    ]);
  });

  it('parses an IPv6 configuration and canonicalises its addresses', () => {
    const config = parseConfig(
      'ActiveIPVersion = IPv6\nSpread_Segment [FF02:0:0:0:0:0:0:1]:4803 {\n v6 2001:DB8:0:0:0:0:0:7\n localhost ;\n fe80::2%eth0\n}', 'f');
    expect(config.params.activeIpVersion).toBe('IPv6');
    expect(config.segments[0]).toMatchObject({ port: 4803, addresses: ['ff02::1'] });
    expect(config.daemons.map((daemon) => [daemon.name, daemon.address])).toEqual([
      ['v6', '2001:db8::7'], ['localhost', '::1'], ['fe80::2', 'fe80::2%eth0'],
    ]);
  });
});

describe('parser: parameters and defaults', () => {
  it('applies every Spread default to a minimal file', () => {
    const { params } = parseConfig(ONE_DAEMON, 'f');
    expect(params).toEqual({
      debugFlags: ['EXIT', 'PRINT', 'CONFIGURATION'],
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
      maxSessionMessages: 1000,
      maxSessionBytes: 64 * 1024 * 1024,
      maxMessageBytes: 143152,
      datagramBytes: null,
      activeIpVersion: 'IPv4',
      window: 160,
      personalWindow: 20,
      // tspread's documented choice: absent AcceleratedRing is false, as Spread 5.0.1 runs and hashes it.
      acceleratedRing: false,
      acceleratedWindow: 15,
      wideAreaNetwork: false,
      excludeSegAddrsFromHash: false,
      ignoreMulticastJoinErrors: false,
      timeouts: LAN_TIMEOUTS,
      security: {
        ringKeyFile: null, tlsPort: null, tlsCertificateFile: null, tlsKeyFile: null, tlsCaFile: null,
        tlsClientCertificates: 'none', requireTls: false, passwordFile: null, accessControlFile: null,
      },
    });
    expect(LAN_TIMEOUTS).toEqual({
      tokenMs: 400, hurryMs: 120, aliveMs: 250, joinMs: 50, repMs: 625, segMs: 500, gatherMs: 200, formMs: 200, lookupMs: 1000,
    });
    expect(WAN_TIMEOUTS).toEqual({
      tokenMs: 5000, hurryMs: 1500, aliveMs: 250, joinMs: 250, repMs: 1250, segMs: 500, gatherMs: 2500, formMs: 2500, lookupMs: 45000,
    });
  });

  it('keeps AcceleratedRing false without the keyword even on two segments, and LAN timeouts follow WideAreaNetwork', () => {
    const twoSegments = parseConfig(fixture('two-segments.conf'), 'f');
    expect(twoSegments.params.acceleratedRing).toBe(false);
    const forcedLan = parseConfig(`WideAreaNetwork = false\n${fixture('two-segments.conf')}`, 'f');
    expect(forcedLan.params.timeouts).toEqual(LAN_TIMEOUTS);
    const forcedWan = parseConfig(withParams('WideAreaNetwork = true'), 'f');
    expect(forcedWan.params.timeouts).toEqual(WAN_TIMEOUTS);
  });

  it('reads every parameter of the full fixture', () => {
    const { params } = parseConfig(fixture('full.conf'), 'full.conf');
    expect(params).toMatchObject({
      eventPriority: 'WARNING',
      eventLogFile: '/var/log/spread-%h.log',
      eventTimeStamp: '[%a %d %b %Y %H:%M:%S]',
      eventPreciseTimeStamp: true,
      dangerousMonitor: true,
      socketPortReuse: 'on',
      runtimeDir: '/run/spread',
      daemonUser: 'nobody',
      daemonGroup: 'nogroup',
      allowedAuthMethods: ['NULL', 'IP'],
      requiredAuthMethods: ['IP'],
      maxSessionMessages: 0,
      maxSessionBytes: 1048576,
      maxMessageBytes: 200000,
      datagramBytes: 9000,
      window: 200,
      personalWindow: 30,
      acceleratedRing: true,
      acceleratedWindow: 0,
      wideAreaNetwork: false,
      excludeSegAddrsFromHash: true,
      ignoreMulticastJoinErrors: true,
      timeouts: { tokenMs: 2000, hurryMs: 600, aliveMs: 300, joinMs: 300, repMs: 700, segMs: 600, gatherMs: 1300, formMs: 1300, lookupMs: 31000 },
    });
    expect(params.debugFlags).toContain('PROTOCOL');
    expect(params.debugFlags).not.toContain('EVENTS');
  });

  it('replaces the debug mask with exactly the listed flags', () => {
    expect(parseConfig(withParams('DebugFlags = { SESSION }'), 'f').params.debugFlags).toEqual(['SESSION']);
    expect(parseConfig(withParams('DebugFlags = { }'), 'f').params.debugFlags).toEqual([]);
    expect(parseConfig(withParams('DebugFlags = { ALL NONE GROUPS }'), 'f').params.debugFlags).toEqual(['GROUPS']);
  });

  it('gives EventTimeStamp without a value the built-in format, and EventPreciseTimeStamp alone turns it on', () => {
    expect(parseConfig(withParams('EventTimeStamp'), 'f').params.eventTimeStamp).toBe('%m/%d/%y %H:%M:%S');
    const precise = parseConfig(withParams('EventPreciseTimeStamp'), 'f').params;
    expect([precise.eventTimeStamp, precise.eventPreciseTimeStamp]).toEqual(['%m/%d/%y %H:%M:%S', true]);
  });

  it('disables NULL on the first auth keyword; Required alone advertises nothing', () => {
    const requiredOnly = parseConfig(withParams('RequiredAuthMethods = "IP"'), 'f').params;
    expect([requiredOnly.allowedAuthMethods, requiredOnly.requiredAuthMethods]).toEqual([[], ['IP']]);
    const allowedOnly = parseConfig(withParams('AllowedAuthMethods = IP'), 'f').params;
    expect(allowedOnly.allowedAuthMethods).toEqual(['IP']);
    const unknown = parseConfig(withParams('AllowedAuthMethods = "NULL KERBEROS"'), 'a.conf');
    expect(unknown.params.allowedAuthMethods).toEqual(['NULL', 'KERBEROS']);
    expect(unknown.warnings).toEqual([expect.stringContaining("a.conf:1:22: unknown authentication method 'KERBEROS'")]);
  });

  it('accepts boolean words in any case and lets a later line override an earlier one', () => {
    expect(parseConfig(withParams('DangerousMonitor = YES', 'DangerousMonitor = No'), 'f').params.dangerousMonitor).toBe(false);
    expect(parseConfig(withParams('SocketPortReuse = AUTO'), 'f').params.socketPortReuse).toBe('auto');
    expect(parseConfig(withParams('ActiveIPVersion = ipv4'), 'f').params.activeIpVersion).toBe('IPv4');
  });

  it('takes all nine timeouts when all nine are given', () => {
    const all = ['TokenTimeout', 'HurryTimeout', 'AliveTimeout', 'JoinTimeout', 'RepTimeout', 'SegTimeout', 'GatherTimeout', 'FormTimeout', 'LookupTimeout']
      .map((name, index) => `${name} = ${index + 1}`);
    expect(parseConfig(withParams(...all), 'f').params.timeouts).toEqual({
      tokenMs: 1, hurryMs: 2, aliveMs: 3, joinMs: 4, repMs: 5, segMs: 6, gatherMs: 7, formMs: 8, lookupMs: 9,
    });
  });

  it('allows AcceleratedWindow above PersonalWindow only on the original ring', () => {
    expect(parseConfig(withParams('AcceleratedWindow = 50'), 'f').params.acceleratedWindow).toBe(50);
  });

  it('warns when MaxMessageBytes is below what Spread clients may send', () => {
    expect(parseConfig(withParams('MaxMessageBytes = 1000'), 'm.conf').warnings).toEqual([expect.stringContaining('m.conf:1:1: MaxMessageBytes 1000')]);
  });
});

describe('parser: errors carry file:line:col', () => {
  const cases: [string, string, string][] = [
    ['Window =160 (glued =)', fixture('bad-window-glued.conf'), "bad-window-glued.conf:1:8: expected '=' after Window, found '=160'"],
    ['Window=160 (one word)', `Window=160\n${ONE_DAEMON}`, "bad.conf:1:1: expected Spread_Segment or a parameter name, found 'Window=160'"],
    ['duplicate name', fixture('bad-duplicate-name.conf'), "bad-duplicate-name.conf:3:2: duplicate daemon name 'd1' (first at line 2)"],
    ['partial timeouts', fixture('bad-partial-timeouts.conf'), 'bad-partial-timeouts.conf:1:1: membership timeouts are all or nothing: missing AliveTimeout'],
    ['name without address', fixture('bad-name-without-address.conf'), "bad-name-without-address.conf:2:2: daemon 'somehost' has no address; tspread does not look names up in DNS"],
    ['no segment', fixture('bad-no-segment.conf'), 'bad-no-segment.conf:3:1: no Spread_Segment'],
    ['no daemon', 'Spread_Segment 127.0.0.255 {\n}\n', 'bad.conf:3:1: no daemons'],
    ['duplicate address', 'Spread_Segment 127.0.0.255 {\n a 10.0.0.1\n b 10.0.0.1\n}', "bad.conf:3:4: duplicate daemon address 10.0.0.1 (also daemon 'a' at line 2)"],
    ['duplicate VirtualID', 'Spread_Segment 127.0.0.255 {\n a 10.0.0.1 VirtualID = 5\n b 10.0.0.2 VirtualID = 5\n}', 'bad.conf:3:13: duplicate VirtualID 5'],
    ['zero VirtualID', 'Spread_Segment 127.0.0.255 {\n a 10.0.0.1 VirtualID = 0\n}', 'bad.conf:2:25: VirtualID must be a positive integer'],
    ['long name', 'Spread_Segment 127.0.0.255 {\n abcdefghijklmnopqrst 10.0.0.1\n}', "bad.conf:2:2: daemon name 'abcdefghijklmnopqrst' is 20 characters; at most 19"],
    ['keyword as name', 'Spread_Segment 127.0.0.255 {\n Window 10.0.0.1\n}', "bad.conf:2:2: 'Window' cannot be a daemon name (reserved word or number); quote it"],
    ['daemon port', 'Spread_Segment 127.0.0.255 {\n a 10.0.0.1:4803\n}', 'bad.conf:2:4: a daemon address cannot carry a port'],
    ['multicast daemon', 'Spread_Segment 127.0.0.255 {\n a 225.0.0.1\n}', 'bad.conf:2:4: daemon address 225.0.0.1 is a multicast address'],
    ['unspecified daemon', 'Spread_Segment 127.0.0.255 {\n a 0.0.0.0\n}', 'bad.conf:2:4: daemon address 0.0.0.0 is the unspecified address'],
    ['port on 2nd segment address', 'Spread_Segment 225.0.0.1 225.0.0.2:4803 {\n a 10.0.0.1\n}', "bad.conf:1:26: only the first segment address may carry a port"],
    ['six segment addresses', 'Spread_Segment 225.0.0.1 225.0.0.2 225.0.0.3 225.0.0.4 225.0.0.5 225.0.0.6 {\n a 10.0.0.1\n}', 'bad.conf:1:66: too many segment addresses (at most 5)'],
    ['segment without address', 'Spread_Segment {\n}', "bad.conf:1:16: expected an address after Spread_Segment"],
    ['unclosed segment', 'Spread_Segment 127.0.0.255 {\n a 10.0.0.1\n', 'bad.conf:3:1: expected a daemon name or address, found end of file'],
    ['mixed families', 'Spread_Segment 127.0.0.255 {\n a 10.0.0.1\n b ::2\n}', 'bad.conf:3:4: daemon address ::2 is IPv6 but the active IP version is IPv4'],
    ['interface without D for the daemon', 'Spread_Segment 127.0.0.255 {\n a 10.0.0.1 { C 10.0.0.1 }\n}', 'bad.conf:2:13: interface list has no D-capable entry'],
    ['empty interface list', 'Spread_Segment 127.0.0.255 {\n a 10.0.0.1 { }\n}', 'bad.conf:2:15: empty interface list'],
    ['interface with port', 'Spread_Segment 127.0.0.255 {\n a 10.0.0.1 { 10.0.0.1:5 }\n}', 'bad.conf:2:15: an interface address cannot carry a port'],
    ['bad boolean', withParams('DangerousMonitor = maybe'), "bad.conf:1:20: expected true/yes or false/no for DangerousMonitor, found 'maybe'"],
    ['bad priority', withParams('EventPriority = LOUD'), 'bad.conf:1:17: expected one of pDEBUG INFO WARNING ERROR CRITICAL FATAL'],
    ['bad tri-state', withParams('SocketPortReuse = sometimes'), 'bad.conf:1:19: expected one of on off auto'],
    ['bad policy', withParams('AccessControlPolicy = DENY'), "bad.conf:1:23: unknown AccessControlPolicy 'DENY'"],
    ['bad IP version', withParams('ActiveIPVersion = IPv5'), 'bad.conf:1:19: expected IPv4 or IPv6'],
    ['number too long', withParams('Window = 1234567890'), "bad.conf:1:10: expected a number for Window (1-9 decimal digits), found '1234567890'"],
    ['zero window', withParams('Window = 0'), 'bad.conf:1:10: Window must be greater than 0'],
    ['zero personal window', withParams('PersonalWindow = 0'), 'bad.conf:1:18: PersonalWindow must be greater than 0'],
    ['zero timeout', withParams('TokenTimeout = 0'), 'bad.conf:1:16: TokenTimeout must be greater than 0'],
    ['personal over window', withParams('Window = 10'), 'bad.conf:1:1: PersonalWindow (20) must not exceed Window (10)'],
    ['accelerated over personal', withParams('AcceleratedRing = yes', 'AcceleratedWindow = 21'), 'bad.conf:2:1: AcceleratedWindow (21) must not exceed PersonalWindow (20)'],
    ['datagram too small', withParams('DatagramBytes = 100'), 'bad.conf:1:1: DatagramBytes must be 256..65507'],
    ['bad debug flag', withParams('DebugFlags = { PRINT LOUD }'), "bad.conf:1:22: expected a debug flag"],
    ['debug flags without braces', withParams('DebugFlags = PRINT'), "bad.conf:1:14: expected '{' after DebugFlags ="],
    ['stray token', '}\n', "bad.conf:1:1: expected Spread_Segment or a parameter name, found '}'"],
  ];

  it.each(cases)('%s', (_label, text, expected) => {
    const source = expected.slice(0, expected.indexOf(':'));
    const error = parseError(text, source);
    expect(error.toString()).toContain(expected);
    expect(error.file).toBe(source);
    expect(error.toString()).toBe(`${error.file}:${error.line}:${error.column}: ${error.detail}`);
  });

  it('enforces the §6.1 limits', () => {
    const daemons = (count: number, from = 0): string =>
      Array.from({ length: count }, (_, i) => ` n${i + from} 10.${(i + from) >> 8}.${(i + from) & 255}.1`).join('\n');
    expect(parseError(`Spread_Segment 127.0.0.255 {\n${daemons(129)}\n}`).toString()).toMatch(/^test\.conf:130:2: too many daemons \(at most 128\)/);
    const segments = Array.from({ length: 21 }, (_, i) => `Spread_Segment 225.0.0.${i + 1} {\n n${i} 10.0.0.${i + 1}\n}`).join('\n');
    expect(parseError(segments).toString()).toMatch(/^test\.conf:61:1: too many segments \(at most 20\)/);
    const interfaces = Array.from({ length: 11 }, (_, i) => `10.0.0.${i + 1}`).join(' ');
    expect(parseError(`Spread_Segment 127.0.0.255 {\n a 10.0.0.1 { ${interfaces} }\n}`).toString()).toMatch(/^test\.conf:2:\d+: too many interfaces \(at most 10 per daemon\)/);
    expect(parseConfig(`Spread_Segment 127.0.0.255 {\n${daemons(128)}\n}`, 'f').daemons).toHaveLength(128);
  });
});

describe('defaultConfig', () => {
  it('is Spread\'s minimal sample: localhost on 127.0.0.255:4803', () => {
    const config = defaultConfig();
    expect(config.source).toBe('<default>');
    expect(config.segments).toEqual([{
      port: 4803,
      addresses: ['127.0.0.255'],
      daemons: [{ name: 'localhost', address: '127.0.0.1', vid: 482711334, interfaces: [], segmentIndex: 0, configIndex: 0 }],
    }]);
  });
});

describe('loadConfig', () => {
  const makeDirs = (): { cwd: string; systemDir: string } => {
    const root = mkdtempSync(join(tmpdir(), 'tspread-config-'));
    return { cwd: root, systemDir: mkdtempSync(join(tmpdir(), 'tspread-etc-')) };
  };

  it('reads the given path first', () => {
    const dirs = makeDirs();
    writeFileSync(join(dirs.cwd, 'mine.conf'), fixture('three-daemons.conf'));
    writeFileSync(join(dirs.cwd, 'spread.conf'), ONE_DAEMON);
    const config = loadConfig('mine.conf', dirs);
    expect(config.daemons).toHaveLength(3);
    expect(config.source).toBe(join(dirs.cwd, 'mine.conf'));
  });

  it('falls through a missing given path to ./spread.conf, then the system file', () => {
    const dirs = makeDirs();
    writeFileSync(join(dirs.systemDir, 'spread.conf'), fixture('two-segments.conf'));
    expect(loadConfig('missing.conf', dirs).segments).toHaveLength(2);
    writeFileSync(join(dirs.cwd, 'spread.conf'), fixture('three-daemons.conf'));
    expect(loadConfig('missing.conf', dirs).daemons).toHaveLength(3);
    expect(loadConfig(undefined, dirs).source).toBe(join(dirs.cwd, 'spread.conf'));
  });

  it('uses the built-in default only when no path was given and no file exists', () => {
    const dirs = makeDirs();
    expect(loadConfig(undefined, dirs).source).toBe('<default>');
    expect(() => loadConfig('missing.conf', dirs)).toThrow(/missing\.conf: configuration file not found/);
  });

  it('reports parse errors with the full file path', () => {
    const dirs = makeDirs();
    writeFileSync(join(dirs.cwd, 'spread.conf'), 'Window =160\n');
    expect(() => loadConfig(undefined, dirs)).toThrow(`${join(dirs.cwd, 'spread.conf')}:1:8: expected '='`);
  });
});

describe('chooseIdentity', () => {
  const config = parseConfig(fixture('three-daemons.conf'), 'three.conf');

  it('takes the -n daemon when its address is local', () => {
    expect(chooseIdentity(config, 'd2', ['127.0.0.1', '127.0.0.2']).name).toBe('d2');
  });

  it('takes the first local daemon in file order without -n', () => {
    expect(chooseIdentity(config, undefined, ['192.168.1.5', '127.0.0.3', '127.0.0.2']).name).toBe('d2');
  });

  it('compares IPv6 addresses in any spelling', () => {
    const v6 = parseConfig('Spread_Segment [ff02::1]:4803 {\n a 2001:db8::7\n}', 'f');
    expect(chooseIdentity(v6, undefined, ['2001:DB8:0:0::7']).name).toBe('a');
  });

  it('refuses long, unknown and non-local names and hosts with no configured address', () => {
    expect(() => chooseIdentity(config, 'abcdefghijklmnopqrst', ['127.0.0.1'])).toThrow('three.conf: daemon name \'abcdefghijklmnopqrst\' is longer than 19 characters');
    expect(() => chooseIdentity(config, 'd9', ['127.0.0.1'])).toThrow("three.conf: no daemon named 'd9'");
    expect(() => chooseIdentity(config, 'd3', ['127.0.0.1'])).toThrow("daemon 'd3' has address 127.0.0.3, which is not an address of this host");
    expect(() => chooseIdentity(config, undefined, ['10.9.9.9'])).toThrow('no configured daemon has an address of this host');
    try {
      chooseIdentity(config, 'd9', []);
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).line).toBe(0);
    }
  });
});

describe('configDiff', () => {
  it('says when hashes agree', () => {
    expect(configDiff(defaultConfig(), parseConfig(ONE_DAEMON, 'b'))).toMatch(/same hash$/);
  });

  it('names the differing daemon, address, port and ring protocol', () => {
    const a = parseConfig(fixture('three-daemons.conf'), 'a.conf');
    const b = parseConfig(fixture('three-daemons.conf').replace('d3 127.0.0.3', 'd3 127.0.0.4').replace(':4803', ':4804'), 'b.conf');
    const text = configDiff(a, b);
    expect(text).toContain('A = a.conf');
    expect(text).toContain('segment 1: port 4803 vs 4804');
    expect(text).toContain("segment 1 daemon 3 ('d3'): address 127.0.0.3 vs 127.0.0.4");
    const accelerated = parseConfig(`AcceleratedRing = true\n${fixture('three-daemons.conf')}`, 'c.conf');
    expect(configDiff(a, accelerated)).toContain('ring protocol: A Original Ring, B Accelerated Ring');
    const fewer = parseConfig(fixture('two-segments.conf'), 'd.conf');
    expect(configDiff(a, fewer)).toContain('segment count: A 1, B 2');
  });
});
