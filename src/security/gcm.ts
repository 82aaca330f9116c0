/**
 * AES-256-GCM over datagrams laid out as [associated data | body | 16-byte tag], the nonce
 * inside the associated data — what ring-seal.ts needs, from one of two engines giving the
 * same bytes:
 *   - native: the optional addon (native/ring_seal.c) on Node's own OpenSSL, one cipher
 *     context per key re-armed with each nonce, ciphertext written straight into the
 *     datagram and opened in place;
 *   - node:crypto: a cipher object per datagram and a copy of its output (the fallback when
 *     the addon is not built, or TSPREAD_NATIVE_SEAL=off).
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { loadNativeAddon } from '../daemon/native-addon.js';

export const GCM_NONCE_BYTES = 12;
export const GCM_TAG_BYTES = 16;

export interface GcmKey {
  /**
   * `out` holds the associated data in [0, aadBytes), the nonce at `nonceAt`; writes the
   * ciphertext of `plain` after it and the tag last (`out` is aadBytes + plain + 16 long).
   * The associated data goes on with `extraAad` (null: none).
   */
  seal(out: Uint8Array, nonceAt: number, aadBytes: number, extraAad: Uint8Array | null, plain: Uint8Array): void;
  /** The plaintext of the same layout, or null when not authentic. The native engine decrypts in place (garbling a refused datagram). */
  open(datagram: Uint8Array, nonceAt: number, aadBytes: number, extraAad: Uint8Array | null): Buffer | null;
}

export interface GcmEngine {
  readonly name: 'native' | 'node:crypto';
  /** `key`: 32 bytes. */
  key(key: Buffer): GcmKey;
}

export const nodeCryptoGcm: GcmEngine = {
  name: 'node:crypto',
  key: (key) => ({
    seal(out, nonceAt, aadBytes, extraAad, plain) {
      const cipher = createCipheriv('aes-256-gcm', key, out.subarray(nonceAt, nonceAt + GCM_NONCE_BYTES));
      cipher.setAAD(associatedData(out, aadBytes, extraAad));
      out.set(cipher.update(plain), aadBytes);
      // GCM is a stream mode: final() adds nothing, the ciphertext is as long as the plaintext.
      cipher.final();
      out.set(cipher.getAuthTag(), aadBytes + plain.length);
    },
    open(datagram, nonceAt, aadBytes, extraAad) {
      const end = datagram.length - GCM_TAG_BYTES;
      try {
        const decipher = createDecipheriv('aes-256-gcm', key, datagram.subarray(nonceAt, nonceAt + GCM_NONCE_BYTES));
        decipher.setAAD(associatedData(datagram, aadBytes, extraAad));
        decipher.setAuthTag(datagram.subarray(end));
        const plain = decipher.update(datagram.subarray(aadBytes, end));
        decipher.final();
        return plain;
      } catch {
        return null;
      }
    },
  }),
};

function associatedData(datagram: Uint8Array, aadBytes: number, extraAad: Uint8Array | null): Uint8Array {
  const head = datagram.subarray(0, aadBytes);
  if (extraAad === null) return head;
  const data = new Uint8Array(aadBytes + extraAad.length);
  data.set(head, 0);
  data.set(extraAad, aadBytes);
  return data;
}

/** native/ring_seal.c */
interface RingSealAddon {
  createKey(key: Uint8Array): object;
  seal(handle: object, out: Uint8Array, nonceAt: number, aadBytes: number, extraAad: Uint8Array | null, plain: Uint8Array): void;
  open(handle: object, datagram: Uint8Array, nonceAt: number, aadBytes: number, extraAad: Uint8Array | null): boolean;
}

function nativeGcm(addon: RingSealAddon): GcmEngine {
  return {
    name: 'native',
    key(key) {
      const handle = addon.createKey(key);
      return {
        seal: (out, nonceAt, aadBytes, extraAad, plain) => addon.seal(handle, out, nonceAt, aadBytes, extraAad, plain),
        open(datagram, nonceAt, aadBytes, extraAad) {
          // Too short to hold a tag is not authentic (the addon would call it misuse).
          if (datagram.length < aadBytes + GCM_TAG_BYTES || !addon.open(handle, datagram, nonceAt, aadBytes, extraAad)) return null;
          return Buffer.from(datagram.buffer, datagram.byteOffset + aadBytes, datagram.length - aadBytes - GCM_TAG_BYTES);
        },
      };
    },
  };
}

/** `fallbackReason`: why node:crypto is used, null when the engine is native. */
export interface GcmAvailability {
  engine: GcmEngine;
  fallbackReason: string | null;
}

let loaded: GcmAvailability | null = null;

/** The native engine when built and not switched off, else node:crypto and why (for a log line). Loaded once. */
export function gcmEngine(env: NodeJS.ProcessEnv = process.env): GcmAvailability {
  if (env.TSPREAD_NATIVE_SEAL === 'off') return { engine: nodeCryptoGcm, fallbackReason: 'TSPREAD_NATIVE_SEAL=off' };
  if (loaded === null) {
    const addon = loadNativeAddon<RingSealAddon>('ring_seal.node');
    loaded = addon.addon === null ? { engine: nodeCryptoGcm, fallbackReason: addon.reason } : { engine: nativeGcm(addon.addon), fallbackReason: null };
  }
  return loaded;
}
