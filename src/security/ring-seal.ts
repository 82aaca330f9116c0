/**
 * Authenticated encryption of ring datagrams (AES-256-GCM, gcm.ts), done by the UDP
 * adapter around the pure ring: the ring never sees a sealed byte.
 *
 * Sealed datagram (big-endian):
 *   0  u16  SEALED_MAGIC            not the ring's magic, not a monitor header
 *   2  u8   flags                   bit 0: sent to the token port (so a copy cannot be moved between ports);
 *                                   bit 1: a unicast (then the receiver's VID is associated data too,
 *                                   so a copy cannot be replayed to another daemon)
 *   3  u8   key id                  which key of the key file (ring-keys.ts)
 *   4  u32  sender VID              the source-address check and the replay window use it
 *   8  u16  sealed length           whole datagram, for splitting GRO reads
 *  10  u32  nonce prefix            random per daemon start
 *  14  u64  nonce counter           starts at the wall clock in µs, +1 per datagram
 *  22  ...  ciphertext of the ring packet
 *  end u8[16] GCM tag
 * The 22-byte header (plus, for a unicast, the receiver's VID) is the associated data, so
 * every field of it is authenticated; the nonce is its last 12 bytes. gcm.ts does the
 * cipher (the native addon when built, else node:crypto: the same bytes either way).
 *
 * Nonces never repeat under one key: the counter only grows within a run (it is the wall
 * clock in µs, or one more than the last, whichever is larger), and a restart takes a fresh
 * random prefix. The receiver keeps one replay window per sender over the counter
 * (replay-window.ts), which survives the sender's restarts because its counter follows the
 * clock. A sender it has no window for yet (it just started) must be fresh: a counter more
 * than FRESHNESS_MS behind its own clock is a replay of old traffic, so hosts' clocks must
 * agree within that.
 */
import { randomBytes } from 'node:crypto';
import { GCM_TAG_BYTES, gcmEngine, type GcmEngine, type GcmKey } from './gcm.js';
import type { RingKeySet } from './ring-keys.js';
import { ReplayWindow } from './replay-window.js';

export const SEALED_MAGIC = 0x7445;
export const SEAL_HEADER_BYTES = 22;
/** Bytes a sealed datagram has beyond the ring packet inside it. */
export const RING_SEAL_OVERHEAD_BYTES = SEAL_HEADER_BYTES + GCM_TAG_BYTES;
const FLAG_TOKEN_PORT = 1;
const FLAG_UNICAST = 2;
const TWO_32 = 2 ** 32;
const NONCE_AT = 10;
/** How far behind this daemon's clock a sender's first datagram may be (clock skew between hosts). */
export const FRESHNESS_MS = 10 * 60 * 1000;

export type OpenRefusal = 'malformed' | 'unknown-key' | 'authentication' | 'replay' | 'sender-mismatch';

export type OpenResult = { ok: true; packet: Buffer } | { ok: false; why: OpenRefusal };

export interface SealStats {
  sealed: number;
  opened: number;
  rejectedMalformed: number;
  rejectedUnknownKey: number;
  rejectedAuthentication: number;
  rejectedReplay: number;
  rejectedSenderMismatch: number;
}

/** The sender VID of a sealed datagram (big-endian u32 at 4), or null when it is not one. */
export function sealedSender(bytes: Uint8Array): number | null {
  if (!isSealed(bytes) || bytes.length < RING_SEAL_OVERHEAD_BYTES) return null;
  return ((bytes[4] << 24) | (bytes[5] << 16) | (bytes[6] << 8) | bytes[7]) >>> 0;
}

export function isSealed(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && ((bytes[0] << 8) | bytes[1]) === SEALED_MAGIC;
}

/** Length of the sealed datagram at `offset` (GRO reads hold several back to back), or null. */
export function sealedLength(bytes: Uint8Array, offset: number): number | null {
  if (bytes.length - offset < RING_SEAL_OVERHEAD_BYTES || ((bytes[offset] << 8) | bytes[offset + 1]) !== SEALED_MAGIC) return null;
  const length = (bytes[offset + 8] << 8) | bytes[offset + 9];
  return length >= RING_SEAL_OVERHEAD_BYTES && length <= bytes.length - offset ? length : null;
}

export class RingSealer {
  // keys, ciphers and sealingCipher are set by setKeys (from the constructor too).
  private keys!: RingKeySet;
  private readonly engine: GcmEngine;
  /** The engine's key for each accepted key id, and the one to seal with. */
  private ciphers!: Map<number, GcmKey>;
  private sealingCipher!: GcmKey;
  private readonly myVid: number;
  /** This daemon's VID, big-endian: the associated data a unicast to it ends with. */
  private readonly myVidBytes = Buffer.alloc(4);
  /** The receiver's VID of the unicast being sealed (reused: one seal at a time). */
  private readonly toBytes = Buffer.alloc(4);
  private readonly prefix: number;
  private counter = 0;
  private readonly clock: () => number;
  private readonly windows = new Map<number, ReplayWindow>();
  private readonly counters: SealStats = {
    sealed: 0,
    opened: 0,
    rejectedMalformed: 0,
    rejectedUnknownKey: 0,
    rejectedAuthentication: 0,
    rejectedReplay: 0,
    rejectedSenderMismatch: 0,
  };

  /**
   * `clock`: wall-clock milliseconds (the counter follows it; freshness is judged by it).
   * `engine`: the AES-GCM implementation (gcm.ts; default: native when built).
   */
  constructor(keys: RingKeySet, myVid: number, clock: () => number = Date.now, engine: GcmEngine = gcmEngine().engine) {
    this.engine = engine;
    this.setKeys(keys);
    this.myVid = myVid >>> 0;
    this.myVidBytes.writeUInt32BE(this.myVid, 0);
    this.prefix = randomBytes(4).readUInt32BE(0);
    this.clock = clock;
  }

  /** New keys from a reloaded key file: seal with its current key, accept all of its keys. */
  setKeys(keys: RingKeySet): void {
    this.keys = keys;
    this.ciphers = new Map([...keys.accepted].map(([id, key]) => [id, this.engine.key(key.key)]));
    this.sealingCipher = this.ciphers.get(keys.sealing.id)!;
  }

  keyIds(): { sealing: number; accepted: number[] } {
    return { sealing: this.keys.sealing.id, accepted: [...this.keys.accepted.keys()].sort((a, b) => a - b) };
  }

  /** `to`: the receiver's VID for a unicast, null for a packet sent alike to every daemon. */
  seal(packet: Uint8Array, tokenPort: boolean, to: number | null = null): Buffer {
    const length = packet.length + RING_SEAL_OVERHEAD_BYTES;
    if (length > 0xffff) throw new RangeError(`ring packet of ${packet.length} bytes is too long to seal`);
    const out = Buffer.allocUnsafe(length);
    const key = this.keys.sealing;
    const counter = Math.max(this.counter + 1, Math.floor(this.clock() * 1000));
    this.counter = counter;
    out.writeUInt16BE(SEALED_MAGIC, 0);
    out[2] = (tokenPort ? FLAG_TOKEN_PORT : 0) | (to === null ? 0 : FLAG_UNICAST);
    out[3] = key.id;
    out.writeUInt32BE(this.myVid, 4);
    out.writeUInt16BE(length, 8);
    out.writeUInt32BE(this.prefix, 10);
    out.writeUInt32BE(Math.floor(counter / TWO_32), 14);
    out.writeUInt32BE(counter >>> 0, 18);
    let extraAad: Buffer | null = null;
    if (to !== null) {
      extraAad = this.toBytes;
      extraAad.writeUInt32BE(to >>> 0, 0);
    }
    this.sealingCipher.seal(out, NONCE_AT, SEAL_HEADER_BYTES, extraAad, packet);
    this.counters.sealed++;
    return out;
  }

  /**
   * The ring packet inside one sealed datagram, or why it was refused. `tokenPort`: the
   * socket it arrived on. The inner packet's sender (bytes 4..7 of the ring header) must be
   * the sealed one, so a member cannot speak for another. The native engine opens in
   * place: `sealed` is overwritten (the packet returned is a view of it).
   */
  open(sealed: Uint8Array, tokenPort: boolean): OpenResult {
    const length = sealed.length;
    const flags = sealed[2];
    if (sealedLength(sealed, 0) !== length || (flags & ~(FLAG_TOKEN_PORT | FLAG_UNICAST)) !== 0 || (flags & FLAG_TOKEN_PORT) !== (tokenPort ? FLAG_TOKEN_PORT : 0)) {
      return this.refuse('malformed');
    }
    const cipher = this.ciphers.get(sealed[3]);
    if (cipher === undefined) return this.refuse('unknown-key');
    const sender = sealedSender(sealed)!;
    const counter = readU32(sealed, 14) * TWO_32 + readU32(sealed, 18);
    let window = this.windows.get(sender);
    // Checked before the (costly) decryption, recorded only after it authenticates.
    if (window !== undefined ? !window.wouldAccept(counter) : counter < (this.clock() - FRESHNESS_MS) * 1000) return this.refuse('replay');
    const packet = cipher.open(sealed, NONCE_AT, SEAL_HEADER_BYTES, (flags & FLAG_UNICAST) !== 0 ? this.myVidBytes : null);
    if (packet === null) return this.refuse('authentication');
    if (packet.length < 8 || packet.readUInt32BE(4) !== sender) return this.refuse('sender-mismatch');
    if (window === undefined) {
      window = new ReplayWindow();
      this.windows.set(sender, window);
    }
    window.accept(counter);
    this.counters.opened++;
    return { ok: true, packet };
  }

  stats(): SealStats {
    return { ...this.counters };
  }

  /** Refusals of every kind, summed. */
  rejected(): number {
    const c = this.counters;
    return c.rejectedMalformed + c.rejectedUnknownKey + c.rejectedAuthentication + c.rejectedReplay + c.rejectedSenderMismatch;
  }

  private refuse(why: OpenRefusal): OpenResult {
    switch (why) {
      case 'malformed': this.counters.rejectedMalformed++; break;
      case 'unknown-key': this.counters.rejectedUnknownKey++; break;
      case 'authentication': this.counters.rejectedAuthentication++; break;
      case 'replay': this.counters.rejectedReplay++; break;
      case 'sender-mismatch': this.counters.rejectedSenderMismatch++; break;
    }
    return { ok: false, why };
  }
}

function readU32(bytes: Uint8Array, at: number): number {
  return ((bytes[at] << 24) | (bytes[at + 1] << 16) | (bytes[at + 2] << 8) | bytes[at + 3]) >>> 0;
}
