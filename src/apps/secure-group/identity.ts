/**
 * Member identities (Ed25519 key pairs) and the trust list that maps each
 * identity name to its public key. Keys are node:crypto KeyObjects; PEM text is
 * accepted wherever a key is, so keys can live in files.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';

export interface Identity {
  /** The name other members list in their trust list. */
  name: string;
  /** Ed25519 private key (KeyObject or PKCS#8 PEM). */
  privateKey: KeyObject | string;
}

/** Identity name → Ed25519 public key (KeyObject or SPKI PEM). */
export type TrustList = ReadonlyMap<string, KeyObject | string> | Readonly<Record<string, KeyObject | string>>;

export interface ResolvedIdentity {
  name: string;
  privateKey: KeyObject;
}

/** A fresh identity and its public key as PEM (what goes into the others' trust lists). */
export function generateIdentity(name: string): { identity: ResolvedIdentity; publicKeyPem: string; privateKeyPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    identity: { name, privateKey },
    publicKeyPem: publicKey.export({ format: 'pem', type: 'spki' }).toString(),
    privateKeyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
  };
}

const IDENTITY_NAME_BYTES_MAX = 200;

export function resolveIdentity(identity: Identity): ResolvedIdentity {
  checkName(identity.name);
  const privateKey = typeof identity.privateKey === 'string' ? createPrivateKey(identity.privateKey) : identity.privateKey;
  if (privateKey.type !== 'private' || privateKey.asymmetricKeyType !== 'ed25519') {
    throw new TypeError(`identity ${identity.name}: the private key must be an Ed25519 private key`);
  }
  return { name: identity.name, privateKey };
}

export function resolveTrust(trust: TrustList): Map<string, KeyObject> {
  const entries = trust instanceof Map ? [...trust.entries()] : Object.entries(trust);
  const resolved = new Map<string, KeyObject>();
  for (const [name, key] of entries as [string, KeyObject | string][]) {
    checkName(name);
    const publicKey = typeof key === 'string' ? createPublicKey(key) : key.type === 'private' ? createPublicKey(key) : key;
    if (publicKey.asymmetricKeyType !== 'ed25519') throw new TypeError(`trust list: ${name}'s key is not an Ed25519 key`);
    resolved.set(name, publicKey);
  }
  return resolved;
}

function checkName(name: string): void {
  if (typeof name !== 'string' || name.length === 0 || Buffer.byteLength(name) > IDENTITY_NAME_BYTES_MAX) {
    throw new TypeError(`identity name must be 1–${IDENTITY_NAME_BYTES_MAX} bytes, got ${JSON.stringify(name)}`);
  }
}
