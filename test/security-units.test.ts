/**
 * The pure pieces of the security layers: ring sealing (round trip, every refusal), the
 * replay window, key-file, password-file and access-control parsing and decisions, and the
 * configuration's security parameters.
 */
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/parser.js';
import { decideAccess, parseAccessControl, type SessionPrincipal } from '../src/security/access-control.js';
import { checkPassword, parsePasswords, passwordCheckLimiter, passwordLine } from '../src/security/passwords.js';
import { REPLAY_WINDOW_COUNTERS, ReplayWindow } from '../src/security/replay-window.js';
import { gcmEngine, nodeCryptoGcm } from '../src/security/gcm.js';
import { parseRingKeys, type RingKeySet } from '../src/security/ring-keys.js';
import { FRESHNESS_MS, RING_SEAL_OVERHEAD_BYTES, RingSealer, sealedLength, sealedSender } from '../src/security/ring-seal.js';

const hex = () => randomBytes(32).toString('hex');
const A = 0x11111111;
const B = 0x22222222;
const C = 0x33333333;

/** A ring-looking packet from `vid` (the sealer checks bytes 4..7 against the sealed sender). */
function packetFrom(vid: number, bytes = 200): Buffer {
  const packet = randomBytes(bytes);
  packet.writeUInt32BE(vid >>> 0, 4);
  return packet;
}

// Every sealing behaviour holds with either AES-GCM engine (security-seal-engines.test.ts: the same bytes).
describe.each([nodeCryptoGcm, gcmEngine({}).engine])('ring sealing ($name)', (engine) => {
  const keyA = hex();
  const keys = parseRingKeys(`current 1 ${keyA}`, 'k');
  const sealer = (keySet: RingKeySet, vid: number, clock: () => number = Date.now) => new RingSealer(keySet, vid, clock, engine);

  it('round-trips data and unicasts, with 38 bytes of overhead and the length in the clear', () => {
    const sender = sealer(keys, A);
    const receiver = sealer(keys, B);
    const packet = packetFrom(A, 1000);
    const sealed = sender.seal(packet, false);
    expect(sealed.length).toBe(1000 + RING_SEAL_OVERHEAD_BYTES);
    expect(sealedLength(sealed, 0)).toBe(sealed.length);
    expect(sealedSender(sealed)).toBe(A);
    expect(sealed.includes(packet.subarray(8, 40))).toBe(false);
    const opened = receiver.open(sealed, false);
    expect(opened.ok && opened.packet.equals(packet)).toBe(true);
    const token = sender.seal(packetFrom(A, 80), true, B);
    expect(receiver.open(token, true).ok).toBe(true);
  });

  it('refuses replays, other ports, other receivers, tampering, truncation, unknown keys and borrowed senders', () => {
    const sender = sealer(keys, A);
    const receiver = sealer(keys, B);
    const third = sealer(keys, C);
    const sealed = sender.seal(packetFrom(A), false);
    expect(receiver.open(sealed, false).ok).toBe(true);
    expect(receiver.open(sealed, false)).toEqual({ ok: false, why: 'replay' });
    expect(receiver.open(sender.seal(packetFrom(A), false), true)).toEqual({ ok: false, why: 'malformed' });
    expect(third.open(sender.seal(packetFrom(A), true, B), true)).toEqual({ ok: false, why: 'authentication' });
    const tampered = Buffer.from(sender.seal(packetFrom(A), false));
    tampered[40] ^= 1;
    expect(receiver.open(tampered, false)).toEqual({ ok: false, why: 'authentication' });
    const headerTampered = Buffer.from(sender.seal(packetFrom(A), false));
    headerTampered[13] ^= 1; // the nonce prefix
    expect(receiver.open(headerTampered, false)).toEqual({ ok: false, why: 'authentication' });
    const whole = sender.seal(packetFrom(A), false);
    expect(receiver.open(whole.subarray(0, whole.length - 1), false)).toEqual({ ok: false, why: 'malformed' });
    const stranger = sealer(parseRingKeys(`current 9 ${hex()}`, 'k'), A);
    expect(receiver.open(stranger.seal(packetFrom(A), false), false)).toEqual({ ok: false, why: 'unknown-key' });
    // Its clock runs 10 ms ahead: a counter the sender already used would be refused as a replay first.
    const sameIdWrongKey = sealer(parseRingKeys(`current 1 ${hex()}`, 'k'), A, () => Date.now() + 10);
    expect(receiver.open(sameIdWrongKey.seal(packetFrom(A), false), false)).toEqual({ ok: false, why: 'authentication' });
    expect(receiver.open(sender.seal(packetFrom(C), false), false)).toEqual({ ok: false, why: 'sender-mismatch' });
    expect(receiver.rejected()).toBe(8);
    expect(receiver.stats().opened).toBe(1);
  });

  it('accepts old and new keys during a rollover, and a restarted sender', () => {
    const keyB = hex();
    const sender = sealer(keys, A);
    const receiver = sealer(parseRingKeys(`current 1 ${keyA}\nnext 2 ${keyB}`, 'k'), B);
    expect(receiver.open(sender.seal(packetFrom(A), false), false).ok).toBe(true);
    sender.setKeys(parseRingKeys(`current 2 ${keyB}\nprevious 1 ${keyA}`, 'k'));
    const sealed = sender.seal(packetFrom(A), false);
    expect(sealed[3]).toBe(2);
    expect(receiver.open(sealed, false).ok).toBe(true);
    receiver.setKeys(parseRingKeys(`current 2 ${keyB}`, 'k'));
    expect(receiver.keyIds()).toEqual({ sealing: 2, accepted: [2] });
    const restarted = sealer(parseRingKeys(`current 2 ${keyB}`, 'k'), A, () => Date.now() + 1000);
    expect(receiver.open(restarted.seal(packetFrom(A), false), false).ok).toBe(true);
  });

  it('a first datagram from a sender must be fresh: old traffic replayed to a restarted daemon is refused', () => {
    const old = sealer(keys, A, () => Date.now() - FRESHNESS_MS - 60_000);
    const stale = old.seal(packetFrom(A), false);
    expect(sealer(keys, B).open(stale, false)).toEqual({ ok: false, why: 'replay' });
    const skewed = sealer(keys, A, () => Date.now() - 5_000);
    expect(sealer(keys, B).open(skewed.seal(packetFrom(A), false), false).ok).toBe(true);
  });
});

describe('replay window', () => {
  it('accepts each counter once, out of order within the window, never below it', () => {
    const window = new ReplayWindow();
    expect(window.accept(1_000_000)).toBe(true);
    expect(window.accept(1_000_000)).toBe(false);
    expect(window.accept(999_990)).toBe(true);
    expect(window.accept(999_990)).toBe(false);
    expect(window.accept(1_000_005)).toBe(true);
    expect(window.accept(1_000_003)).toBe(true);
    expect(window.accept(1_000_005 - REPLAY_WINDOW_COUNTERS)).toBe(false);
    expect(window.accept(1_000_000 + 3 * REPLAY_WINDOW_COUNTERS)).toBe(true);
    expect(window.accept(1_000_005)).toBe(false);
    expect(window.wouldAccept(1_000_000 + 3 * REPLAY_WINDOW_COUNTERS - 1)).toBe(true);
  });
});

describe('replay window against a model', () => {
  it('accepts exactly the counters not seen before and not older than the window', () => {
    const W = REPLAY_WINDOW_COUNTERS;
    const step = fc.oneof(fc.integer({ min: -40, max: 200 }), fc.integer({ min: -W - 50, max: 2 * W }), fc.constant(0));
    fc.assert(
      fc.property(fc.array(step, { minLength: 1, maxLength: 300 }), (steps) => {
        const window = new ReplayWindow();
        const seen = new Set<number>();
        let highest = -1;
        let counter = 5 * W;
        for (const delta of steps) {
          counter = Math.max(0, counter + delta);
          const expected = !seen.has(counter) && (highest < 0 || counter > highest - W);
          expect(window.accept(counter)).toBe(expected);
          if (expected) {
            seen.add(counter);
            highest = Math.max(highest, counter);
          }
        }
      }),
      { numRuns: 200 },
    );
  });
});

describe('key, password and access-control files', () => {
  it('ring keys: exactly one current key, ids 0..255, 32-byte keys', () => {
    expect(parseRingKeys(`# keys\ncurrent 3 ${hex()}\nnext 4 ${hex()}\n`, 'k').accepted.size).toBe(2);
    expect(() => parseRingKeys(`next 4 ${hex()}`, 'k')).toThrow(/no 'current' key/);
    expect(() => parseRingKeys(`current 1 ${hex()}\ncurrent 2 ${hex()}`, 'k')).toThrow(/more than one/);
    expect(() => parseRingKeys(`current 256 ${hex()}`, 'k')).toThrow(/0\.\.255/);
    expect(() => parseRingKeys('current 1 abcd', 'k')).toThrow(/64 hex digits/);
    expect(() => parseRingKeys(`current 1 ${hex()}\nnext 1 ${hex()}`, 'k')).toThrow(/given twice/);
  });

  it('passwords: scrypt lines, right and wrong passwords, unknown users', () => {
    const table = parsePasswords(`${passwordLine('alice', 'pw1', 1024)}\n# bob\n${passwordLine('bob', 'pw2', 1024)}\n`, 'p');
    expect(checkPassword(table, 'alice', 'pw1')).toBe(true);
    expect(checkPassword(table, 'alice', 'pw2')).toBe(false);
    expect(checkPassword(table, 'carol', 'pw1')).toBe(false);
    expect(() => parsePasswords('alice:plain:secret', 'p')).toThrow(/scrypt/);
  });

  it('password checks are rate-limited: a burst, then one per 1/N s', () => {
    let now = 0;
    const allowed = passwordCheckLimiter(() => now, 5);
    expect(Array.from({ length: 7 }, () => allowed())).toEqual([true, true, true, true, true, false, false]);
    now += 200;
    expect([allowed(), allowed()]).toEqual([true, false]);
  });

  it('access control: first match wins, patterns, subjects, default', () => {
    const control = parseAccessControl(
      [
        'allow cert:ops-* join ops.*',
        'deny * join ops.*',
        'deny ip:10.0.0.0/8 connect',
        'allow user:alice multicast *',
        'deny * multicast announce',
        'deny unix multicast local-only?',
        'default allow',
      ].join('\n'),
      'acl',
    );
    const who = (over: Partial<SessionPrincipal>): SessionPrincipal => ({ privateName: 'x', user: null, certificate: null, tls: false, ipv4: null, unix: false, ...over });
    expect(decideAccess(control, who({ certificate: 'ops-alice' }), 'join', 'ops.pager').allowed).toBe(true);
    expect(decideAccess(control, who({ certificate: 'dev-bob' }), 'join', 'ops.pager')).toEqual({ allowed: false, by: 'line 2' });
    expect(decideAccess(control, who({ ipv4: 0x0a010203 }), 'connect').allowed).toBe(false);
    expect(decideAccess(control, who({ ipv4: 0x0b010203 }), 'connect')).toEqual({ allowed: true, by: 'default' });
    expect(decideAccess(control, who({ user: 'alice' }), 'multicast', 'announce').allowed).toBe(true);
    expect(decideAccess(control, who({}), 'multicast', 'announce').allowed).toBe(false);
    expect(decideAccess(control, who({ unix: true }), 'multicast', 'local-only1').allowed).toBe(false);
    expect(decideAccess(parseAccessControl('default deny', 'acl'), who({}), 'join', 'g').allowed).toBe(false);
    expect(() => parseAccessControl('allow * join', 'acl')).toThrow(/needs a group pattern/);
    expect(() => parseAccessControl('allow robots join g', 'acl')).toThrow(/unknown subject/);
    expect(() => parseAccessControl('permit * join g', 'acl')).toThrow(/allow, deny or default/);
  });
});

describe('spread.conf security parameters', () => {
  const segment = 'Spread_Segment 127.0.0.255:4803 {\n d1 127.0.0.1\n}\n';
  it('reads them, and refuses incomplete TLS settings with the line', () => {
    const config = parseConfig(`RingKeyFile = /etc/tspread/ring.key\nTlsPort = 4813\nTlsCertificateFile = d.pem\nTlsKeyFile = d.key\nTlsCaFile = ca.pem\nTlsClientCertificates = require\nRequireTls = yes\n${segment}`, 'f');
    expect(config.params.security).toMatchObject({ ringKeyFile: '/etc/tspread/ring.key', tlsPort: 4813, tlsClientCertificates: 'require', requireTls: true });
    expect(() => parseConfig(`TlsPort = 4813\n${segment}`, 'f')).toThrow(/f:1:1: TlsPort needs TlsCertificateFile and TlsKeyFile/);
    expect(() => parseConfig(`RequireTls = yes\n${segment}`, 'f')).toThrow(/RequireTls needs TlsPort/);
    expect(() => parseConfig(`TlsClientCertificates = maybe\n${segment}`, 'f')).toThrow(/none, request or require/);
    expect(parseConfig(`AllowedAuthMethods = "NULL PWORD CERT"\n${segment}`, 'f').warnings).toEqual([]);
  });
});
