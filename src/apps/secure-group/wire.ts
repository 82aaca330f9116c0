/**
 * Key-agreement messages on the wire: a JSON body, then its Ed25519 signature.
 *
 *   u16 body length (big-endian) | body (UTF-8 JSON) | 64-byte signature
 *
 * The signature covers a domain label and the body, and every body names the
 * view it belongs to (viewTag), so a message signed for one view is worthless
 * in any other.
 */
import { sign, verify, type KeyObject } from 'node:crypto';

export type AgreementMessage =
  /** A member's signed entry for the view: its identity and its fresh leaf's blinded key. */
  | { kind: 'leaf'; view: string; sender: string; identity: string; blindedKey: Buffer }
  /** A sponsor's blinded key of an internal node of the key tree. */
  | { kind: 'node'; view: string; sender: string; node: string; blindedKey: Buffer }
  /** The roster leader closes the roster: leaves delivered later are not in this view's tree. */
  | { kind: 'close'; view: string; sender: string };

const SIGNATURE_BYTES = 64;
const BLINDED_KEY_BYTES = 32;
const BODY_BYTES_MAX = 4096;
const SIGNED_LABEL = Buffer.from('tspread secure-group agreement v1\0');

export class MalformedMessageError extends Error {}

export function encodeAgreement(message: AgreementMessage, privateKey: KeyObject): Buffer {
  const fields: Record<string, string> = { kind: message.kind, view: message.view, sender: message.sender };
  if (message.kind === 'leaf') fields.identity = message.identity;
  if (message.kind === 'node') fields.node = message.node;
  if (message.kind !== 'close') fields.blindedKey = message.blindedKey.toString('base64');
  const body = Buffer.from(JSON.stringify(fields));
  const head = Buffer.alloc(2);
  head.writeUInt16BE(body.length);
  return Buffer.concat([head, body, sign(null, Buffer.concat([SIGNED_LABEL, body]), privateKey)]);
}

/** A decoded message and a check of its signature against a key the caller picks from its content. */
export interface ReceivedAgreement {
  message: AgreementMessage;
  verifiedBy(publicKey: KeyObject): boolean;
}

const CACHE_ENTRIES_MAX = 8192;

/**
 * Results of signature checks, shared by the members one process hosts: every
 * member must authenticate every other's leaf (n² checks per view in all), and
 * members in one process would otherwise check the same signature n times. A
 * check is a pure function of key, body and signature, so its result can be kept.
 */
export class SignatureCache {
  readonly #results = new Map<string, boolean>();
  readonly #keyNames = new WeakMap<KeyObject, string>();
  hits = 0;

  verify(publicKey: KeyObject, signed: Buffer, signature: Buffer): boolean {
    let keyName = this.#keyNames.get(publicKey);
    if (keyName === undefined) {
      keyName = publicKey.export({ format: 'jwk' }).x ?? '';
      this.#keyNames.set(publicKey, keyName);
    }
    const entry = `${keyName}:${signature.toString('base64')}:${signed.toString('base64')}`;
    const known = this.#results.get(entry);
    if (known !== undefined) {
      this.hits += 1;
      return known;
    }
    const result = verify(null, signed, publicKey, signature);
    if (this.#results.size >= CACHE_ENTRIES_MAX) this.#results.delete(this.#results.keys().next().value!);
    this.#results.set(entry, result);
    return result;
  }
}

export function decodeAgreement(bytes: Uint8Array, cache?: SignatureCache): ReceivedAgreement {
  const data = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (data.length < 2) throw new MalformedMessageError('short message');
  const bodyBytes = data.readUInt16BE(0);
  if (bodyBytes > BODY_BYTES_MAX || data.length !== 2 + bodyBytes + SIGNATURE_BYTES) throw new MalformedMessageError('bad length');
  const body = data.subarray(2, 2 + bodyBytes);
  const signature = data.subarray(2 + bodyBytes);
  let fields: unknown;
  try {
    fields = JSON.parse(body.toString('utf8'));
  } catch {
    throw new MalformedMessageError('body is not JSON');
  }
  const message = parseFields(fields);
  return {
    message,
    verifiedBy: (publicKey) => {
      const signed = Buffer.concat([SIGNED_LABEL, body]); // built only for the messages a member checks
      return cache === undefined ? verify(null, signed, publicKey, signature) : cache.verify(publicKey, signed, signature);
    },
  };
}

function parseFields(fields: unknown): AgreementMessage {
  if (typeof fields !== 'object' || fields === null) throw new MalformedMessageError('body is not an object');
  const record = fields as Record<string, unknown>;
  const text = (name: string): string => {
    const value = record[name];
    if (typeof value !== 'string' || value.length === 0) throw new MalformedMessageError(`missing ${name}`);
    return value;
  };
  const key = (): Buffer => {
    const value = Buffer.from(text('blindedKey'), 'base64');
    if (value.length !== BLINDED_KEY_BYTES) throw new MalformedMessageError('blinded key is not 32 bytes');
    return value;
  };
  const kind = text('kind');
  const view = text('view');
  const sender = text('sender');
  if (kind === 'leaf') return { kind, view, sender, identity: text('identity'), blindedKey: key() };
  if (kind === 'node') return { kind, view, sender, node: text('node'), blindedKey: key() };
  if (kind === 'close') return { kind, view, sender };
  throw new MalformedMessageError(`unknown kind ${kind}`);
}
