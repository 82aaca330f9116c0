/**
 * The two AES-256-GCM engines of src/security/gcm.ts write the same bytes: the native addon
 * (native/ring_seal.c, built by `npm ci`) against node:crypto on random keys, headers,
 * unicast associated data and packets, each opening the other's datagrams and both
 * refusing the same forgeries; then sealed rings whose daemons use different engines.
 */
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { loadNativeAddon } from '../src/daemon/native-addon.js';
import { GCM_TAG_BYTES, gcmEngine, nodeCryptoGcm, type GcmKey } from '../src/security/gcm.js';
import { parseRingKeys } from '../src/security/ring-keys.js';
import { RingSealer } from '../src/security/ring-seal.js';

const HEADER_BYTES = 22;
const NONCE_AT = 10;
const native = gcmEngine({});

function sealWith(key: GcmKey, header: Uint8Array, extraAad: Uint8Array | null, plain: Uint8Array): Buffer {
  const out = Buffer.alloc(header.length + plain.length + GCM_TAG_BYTES);
  out.set(header, 0);
  key.seal(out, NONCE_AT, header.length, extraAad, plain);
  return out;
}

/** Opens a copy (the native engine opens in place). */
const openCopy = (key: GcmKey, datagram: Uint8Array, extraAad: Uint8Array | null): Buffer | null =>
  key.open(Buffer.from(datagram), NONCE_AT, HEADER_BYTES, extraAad);

describe('AES-256-GCM engines', () => {
  it('the native addon is built and loads; TSPREAD_NATIVE_SEAL=off chooses node:crypto and says so', () => {
    expect(native.fallbackReason).toBeNull();
    expect(native.engine.name).toBe('native');
    expect(gcmEngine({ TSPREAD_NATIVE_SEAL: 'off' })).toEqual({ engine: nodeCryptoGcm, fallbackReason: 'TSPREAD_NATIVE_SEAL=off' });
    // An addon that was not built: the reason the daemon logs.
    expect(loadNativeAddon('missing.node')).toEqual({ addon: null, reason: expect.stringContaining('native addon not built') });
  });

  it('seal the same bytes, open each other, and refuse the same forgeries', () => {
    const arbitraryCase = fc.record({
      key: fc.uint8Array({ minLength: 32, maxLength: 32 }),
      header: fc.uint8Array({ minLength: HEADER_BYTES, maxLength: HEADER_BYTES }),
      extraAad: fc.option(fc.uint8Array({ minLength: 4, maxLength: 4 })),
      plain: fc.uint8Array({ maxLength: 3000 }),
      flipAt: fc.nat(),
      flipBit: fc.integer({ min: 0, max: 7 }),
    });
    fc.assert(
      fc.property(arbitraryCase, ({ key, header, extraAad, plain, flipAt, flipBit }) => {
        const fast = native.engine.key(Buffer.from(key));
        const reference = nodeCryptoGcm.key(Buffer.from(key));
        const sealed = sealWith(fast, header, extraAad, plain);
        expect(sealed.equals(sealWith(reference, header, extraAad, plain))).toBe(true);
        for (const engine of [fast, reference]) {
          expect(openCopy(engine, sealed, extraAad)?.equals(plain)).toBe(true);
          // Any one bit of header, ciphertext or tag changed: not authentic.
          const forged = Buffer.from(sealed);
          forged[flipAt % forged.length] ^= 1 << flipBit;
          expect(openCopy(engine, forged, extraAad)).toBeNull();
          // The unicast's receiver is associated data too: another receiver, or none, is refused.
          const otherReceiver = extraAad === null ? Uint8Array.of(0, 0, 0, 1) : null;
          expect(openCopy(engine, sealed, otherReceiver)).toBeNull();
          // A wrong key, and a truncated tag.
          expect(openCopy(nodeCryptoGcm.key(randomBytes(32)), sealed, extraAad)).toBeNull();
          expect(openCopy(engine, sealed.subarray(0, sealed.length - 1), extraAad)).toBeNull();
        }
      }),
      { numRuns: 300 },
    );
  });

  it('the native engine opens in place and refuses bad arguments with a TypeError', () => {
    const key = native.engine.key(randomBytes(32));
    const plain = randomBytes(100);
    const sealed = sealWith(key, randomBytes(HEADER_BYTES), null, plain);
    const opened = key.open(sealed, NONCE_AT, HEADER_BYTES, null)!;
    expect(opened.equals(plain)).toBe(true);
    expect(opened.buffer).toBe(sealed.buffer);
    expect(() => key.seal(Buffer.alloc(10), NONCE_AT, HEADER_BYTES, null, plain)).toThrow(TypeError);
    expect(() => native.engine.key(randomBytes(16))).toThrow(TypeError);
    expect(key.open(Buffer.alloc(HEADER_BYTES + GCM_TAG_BYTES - 1), NONCE_AT, HEADER_BYTES, null)).toBeNull();
  });
});

describe('ring sealers on different engines', () => {
  it('open each other’s broadcasts and unicasts, and count the same refusals', () => {
    const keys = parseRingKeys(`current 7 ${randomBytes(32).toString('hex')}`, 'k');
    const A = 0x0a000001;
    const B = 0x0a000002;
    const pairs = [
      [new RingSealer(keys, A, Date.now, native.engine), new RingSealer(keys, B, Date.now, nodeCryptoGcm)],
      [new RingSealer(keys, A, Date.now, nodeCryptoGcm), new RingSealer(keys, B, Date.now, native.engine)],
    ];
    for (const [sender, receiver] of pairs) {
      for (const bytes of [8, 1000, 32730]) {
        const packet = randomBytes(bytes);
        packet.writeUInt32BE(A, 4);
        const broadcast = receiver.open(sender.seal(packet, false), false);
        expect(broadcast.ok && broadcast.packet.equals(packet)).toBe(true);
        const unicast = receiver.open(sender.seal(packet, true, B), true);
        expect(unicast.ok && unicast.packet.equals(packet)).toBe(true);
        const forged = sender.seal(packet, false);
        forged[forged.length - 1] ^= 0x80;
        expect(receiver.open(forged, false)).toEqual({ ok: false, why: 'authentication' });
        expect(receiver.open(sender.seal(packet, true, A), true)).toEqual({ ok: false, why: 'authentication' });
      }
      expect(receiver.stats()).toMatchObject({ opened: 6, rejectedAuthentication: 6 });
    }
  });
});
