/**
 * Raw 32-byte X25519 keys over node:crypto, which only takes KeyObjects: the
 * DER prefixes below wrap a raw key as PKCS#8 (private) or SPKI (public).
 */
import { createPrivateKey, createPublicKey, diffieHellman, hkdfSync } from 'node:crypto';

const PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');
const SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');
export const X25519_KEY_BYTES = 32;

function privateKeyObject(secret: Uint8Array) {
  return createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, secret]), format: 'der', type: 'pkcs8' });
}

/** The blinded key g^secret of a node secret (its public half). */
export function blindedKey(secret: Uint8Array): Buffer {
  const der = createPublicKey(privateKeyObject(secret)).export({ format: 'der', type: 'spki' });
  return der.subarray(SPKI_PREFIX.length);
}

/**
 * The parent's secret from one child's secret and the other child's blinded key:
 * both children get the same value (DH is symmetric); HKDF turns the shared
 * point into the next scalar, as TGDH maps g^(ab) to an exponent.
 */
export function parentSecret(childSecret: Uint8Array, siblingBlindedKey: Uint8Array): Buffer {
  const publicKey = createPublicKey({ key: Buffer.concat([SPKI_PREFIX, siblingBlindedKey]), format: 'der', type: 'spki' });
  const shared = diffieHellman({ privateKey: privateKeyObject(childSecret), publicKey });
  return Buffer.from(hkdfSync('sha256', shared, Buffer.alloc(0), 'tspread tgdh node', X25519_KEY_BYTES));
}
