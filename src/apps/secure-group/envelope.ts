/**
 * Application messages under a view's key: AES-256-GCM, with the sender's
 * identity and private group, the group and the view in the associated data, so
 * a message cannot be replayed into another view or passed off as another
 * member's.
 *
 *   version (1) | view tag (16) | nonce (12) | ciphertext | tag (16)
 *
 * Nonces are the sender's index in the view's roster and its message counter:
 * unique per key without randomness (every view has a fresh key).
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';
import type { EstablishedKey } from './agreement.js';

const VERSION = 1;
const VIEW_TAG_BYTES = 16;
const NONCE_BYTES = 12;
const AUTH_TAG_BYTES = 16;
const HEADER_BYTES = 1 + VIEW_TAG_BYTES + NONCE_BYTES;
/** Bytes an envelope adds to its plaintext. */
export const ENVELOPE_OVERHEAD_BYTES = HEADER_BYTES + AUTH_TAG_BYTES;

function associatedData(group: string, viewTag: string, sender: string, identity: string): Buffer {
  return Buffer.from(['tspread secure-group data v1', group, viewTag, sender, identity].join('\0'));
}

/** The view tag an envelope names (hex), or null when it is not an envelope. */
export function envelopeViewTag(bytes: Uint8Array): string | null {
  if (bytes.length < HEADER_BYTES + AUTH_TAG_BYTES || bytes[0] !== VERSION) return null;
  return Buffer.from(bytes.subarray(1, 1 + VIEW_TAG_BYTES)).toString('hex');
}

export class Sealer {
  #counter = 0n;
  readonly #index: number;

  constructor(
    readonly group: string,
    readonly key: EstablishedKey,
    readonly me: string,
  ) {
    this.#index = key.participants.findIndex((participant) => participant.member === me);
    if (this.#index < 0) throw new Error(`${me} holds no place in the view's roster`);
  }

  seal(plaintext: Uint8Array): Buffer {
    const nonce = Buffer.alloc(NONCE_BYTES);
    nonce.writeUInt32BE(this.#index, 0);
    nonce.writeBigUInt64BE(this.#counter++, 4);
    const identity = this.key.participants[this.#index].identity;
    const cipher = createCipheriv('aes-256-gcm', this.key.key, nonce);
    cipher.setAAD(associatedData(this.group, this.key.viewTag, this.me, identity));
    const head = Buffer.alloc(1 + VIEW_TAG_BYTES);
    head[0] = VERSION;
    Buffer.from(this.key.viewTag, 'hex').copy(head, 1, 0, VIEW_TAG_BYTES);
    return Buffer.concat([head, nonce, cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
  }
}

export type OpenResult =
  | { ok: true; plaintext: Buffer; identity: string; counter: bigint }
  | { ok: false; reason: 'not-a-member' | 'wrong-nonce' | 'bad-tag' };

/**
 * Decrypts an envelope already matched to `key` by its view tag. `counter` is the
 * sender's message number in this view: the caller rejects one it has seen (replays).
 */
export function openEnvelope(group: string, key: EstablishedKey, sender: string, bytes: Uint8Array): OpenResult {
  const index = key.participants.findIndex((candidate) => candidate.member === sender);
  if (index < 0) return { ok: false, reason: 'not-a-member' };
  const data = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const nonce = data.subarray(1 + VIEW_TAG_BYTES, HEADER_BYTES);
  if (nonce.readUInt32BE(0) !== index) return { ok: false, reason: 'wrong-nonce' };
  const participant = key.participants[index];
  const decipher = createDecipheriv('aes-256-gcm', key.key, nonce);
  decipher.setAAD(associatedData(group, key.viewTag, sender, participant.identity));
  decipher.setAuthTag(data.subarray(data.length - AUTH_TAG_BYTES));
  try {
    const plaintext = Buffer.concat([decipher.update(data.subarray(HEADER_BYTES, data.length - AUTH_TAG_BYTES)), decipher.final()]);
    return { ok: true, plaintext, identity: participant.identity, counter: nonce.readBigUInt64BE(4) };
  } catch {
    return { ok: false, reason: 'bad-tag' };
  }
}
