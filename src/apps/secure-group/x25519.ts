/**
 * Raw 32-byte X25519 keys over node:crypto, which only takes KeyObjects.
 *
 * Private keys are imported as JWK: Node builds an OKP private key from `d`
 * alone (OpenSSL derives the public half), about ten times faster than parsing
 * PKCS#8 DER, which dominates a rekey otherwise. JWK needs an `x` string, which
 * that path does not use; the test of this module checks the keys against the
 * DER import. Blinded keys are X25519(secret, base point).
 */
import { createPrivateKey, createPublicKey, diffieHellman, hkdfSync, type KeyObject } from 'node:crypto';

export const X25519_KEY_BYTES = 32;
const UNUSED_X = Buffer.alloc(X25519_KEY_BYTES).toString('base64url');
const BASE_POINT = publicKeyObject(Buffer.from([9, ...new Array<number>(31).fill(0)]));

function privateKeyObject(secret: Uint8Array): KeyObject {
  const d = Buffer.from(secret.buffer, secret.byteOffset, secret.byteLength).toString('base64url');
  return createPrivateKey({ key: { kty: 'OKP', crv: 'X25519', d, x: UNUSED_X }, format: 'jwk' });
}

function publicKeyObject(blinded: Uint8Array): KeyObject {
  const x = Buffer.from(blinded.buffer, blinded.byteOffset, blinded.byteLength).toString('base64url');
  return createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x }, format: 'jwk' });
}

/** The blinded key g^secret of a node secret (its public half). */
export function blindedKey(secret: Uint8Array): Buffer {
  return diffieHellman({ privateKey: privateKeyObject(secret), publicKey: BASE_POINT });
}

/**
 * The parent's secret from one child's secret and the other child's blinded key:
 * both children get the same value (DH is symmetric); HKDF turns the shared
 * point into the next scalar, as TGDH maps g^(ab) to an exponent. Throws on a
 * low-order blinded key (all-zero shared point).
 */
export function parentSecret(childSecret: Uint8Array, siblingBlindedKey: Uint8Array): Buffer {
  const shared = diffieHellman({ privateKey: privateKeyObject(childSecret), publicKey: publicKeyObject(siblingBlindedKey) });
  return Buffer.from(hkdfSync('sha256', shared, Buffer.alloc(0), 'tspread tgdh node', X25519_KEY_BYTES));
}
