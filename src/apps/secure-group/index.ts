/**
 * tspread/secure-group: end-to-end encrypted groups with contributory keys
 * (tree-based group Diffie–Hellman over X25519, a new key on every view) and
 * Ed25519-authenticated members. See docs/secure-groups.md.
 */
export { secureGroup, SecureGroup, AGREEMENT_MESS_TYPE, DATA_MESS_TYPE, SECURE_MESSAGE_BYTES_MAX } from './secure-group.js';
export type { ReadyEvent, SecureGroupEvents, SecureGroupOptions, SecureMessage } from './secure-group.js';
export { generateIdentity } from './identity.js';
export type { Identity, TrustList } from './identity.js';
export { KeyAgreement, viewTagOf } from './agreement.js';
export type { AgreementOutput, EstablishedKey, Participant, RejectReason, ViewInput } from './agreement.js';
export { envelopeViewTag, openEnvelope } from './envelope.js';
export { SignatureCache } from './wire.js';
