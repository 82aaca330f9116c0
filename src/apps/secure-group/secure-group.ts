/**
 * SecureGroup: an end-to-end encrypted Spread group on the public client API.
 * It feeds the group's regular views and agreement messages to the pure
 * KeyAgreement (agreement.ts), multicasts what that returns, and seals and opens
 * application messages with the view's key (envelope.ts). The daemons carry only
 * signed blinded keys and ciphertext.
 *
 * Sending while a rekey is in progress (from a transitional signal or a new view
 * until its key) queues the message; it goes out under the new key. Received
 * messages for the view whose key is still being agreed wait for it; messages for
 * the previous view (sent before their sender saw the change) are still opened
 * with the previous key; anything else is dropped and counted by reason.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import type { DataMessage, MembershipMessage, Session } from '../../client/index.js';
import { KeyAgreement, type AgreementOutput, type EstablishedKey, type Participant } from './agreement.js';
import { ENVELOPE_OVERHEAD_BYTES, envelopeViewTag, openEnvelope, Sealer } from './envelope.js';
import { resolveIdentity, resolveTrust, type Identity, type TrustList } from './identity.js';
import type { SignatureCache } from './wire.js';

export interface SecureGroupOptions {
  /** This member's identity: its name and Ed25519 private key. */
  identity: Identity;
  /** Identity name → Ed25519 public key of every member allowed in (this member's own included). */
  trust: TrustList;
  /** How long the roster leader waits for silent view members before closing the roster (default 500 ms). */
  rosterWaitMs?: number;
  /**
   * Signature checks shared by the members this process hosts (one SignatureCache for all
   * of them): each leaf is then checked once per process instead of once per member.
   */
  signatureCache?: SignatureCache;
  /** Messages held while a rekey is in progress, each way (default 10 000). */
  queueMax?: number;
}

export interface ReadyEvent {
  viewTag: string;
  members: Participant[];
  fingerprint: string;
  /** From the regular view's delivery to this key, in ms. */
  rekeyMs: number;
  /** performance.now() when the view was delivered and when the key was established. */
  viewAtMs: number;
  readyAtMs: number;
}

export interface SecureMessage {
  data: Buffer;
  /** The sender's private group and the identity it proved in this view. */
  sender: string;
  identity: string;
}

export interface SecureGroupEvents {
  /** A key for the current view is established. */
  ready: [ReadyEvent];
  /** Same moment as ready: how long the rekey took. */
  rekey: [{ ms: number; members: number }];
  message: [SecureMessage];
  /**
   * This view goes on without this member: its identity was refused ('untrusted'), or its leaf came
   * after the roster closed ('late': it then leaves and joins again, and the next view waits for it).
   */
  excluded: [{ viewTag: string; reason: 'untrusted' | 'late' }];
}

export const AGREEMENT_MESS_TYPE = 0x5301;
export const DATA_MESS_TYPE = 0x5302;
const ROSTER_WAIT_MS_DEFAULT = 500;
const QUEUE_MAX_DEFAULT = 10_000;
/** Spread's message limit (143 152 bytes) less one group name (32) and the envelope. */
export const SECURE_MESSAGE_BYTES_MAX = 143_152 - 32 - ENVELOPE_OVERHEAD_BYTES;

export class SecureGroup extends EventEmitter<SecureGroupEvents> {
  readonly name: string;
  readonly #session: Session;
  readonly #agreement: KeyAgreement;
  readonly #rosterWaitMs: number;
  readonly #queueMax: number;
  readonly #drops = new Map<string, number>();
  #current: EstablishedKey | null = null;
  #previous: EstablishedKey | null = null;
  readonly #lastCounters = new WeakMap<EstablishedKey, Map<string, bigint>>();
  #sealer: Sealer | null = null;
  #outbox: Uint8Array[] = [];
  #inbox: DataMessage[] = [];
  #viewAtMs = 0;
  #rosterTimer: NodeJS.Timeout | null = null;
  #detach: () => void;

  constructor(session: Session, name: string, options: SecureGroupOptions) {
    super();
    this.name = name;
    this.#session = session;
    this.#agreement = new KeyAgreement(session.privateGroup, resolveIdentity(options.identity), resolveTrust(options.trust), options.signatureCache);
    this.#rosterWaitMs = options.rosterWaitMs ?? ROSTER_WAIT_MS_DEFAULT;
    this.#queueMax = options.queueMax ?? QUEUE_MAX_DEFAULT;
    const onMembership = (message: MembershipMessage) => this.#onMembership(message);
    const onMessage = (message: DataMessage) => this.#onMessage(message);
    session.on('membership', onMembership);
    session.on('message', onMessage);
    this.#detach = () => {
      session.off('membership', onMembership);
      session.off('message', onMessage);
    };
    session.join(name);
  }

  /** The current view's key (also for tests and tools that keep it), or null while none is established. */
  get key(): EstablishedKey | null {
    return this.#sealer === null ? null : this.#current;
  }

  /** Dropped inputs by reason: agreement messages rejected and application messages not opened. */
  get drops(): Readonly<Record<string, number>> {
    return Object.fromEntries(this.#drops);
  }

  /** Messages waiting for a key to be sent. */
  get queued(): number {
    return this.#outbox.length;
  }

  /** Replaces the trust list (identity rotation); it applies from the next view, which rekeys. */
  setTrust(trust: TrustList): void {
    this.#agreement.setTrust(resolveTrust(trust));
  }

  /**
   * Encrypts and multicasts `data` (AGREED, at most SECURE_MESSAGE_BYTES_MAX bytes) under the view's
   * key; queued while a rekey is in progress.
   */
  send(data: Uint8Array | string): void {
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    if (bytes.length > SECURE_MESSAGE_BYTES_MAX) throw new RangeError(`${bytes.length} bytes exceed ${SECURE_MESSAGE_BYTES_MAX}`);
    if (this.#sealer === null) {
      if (this.#outbox.length >= this.#queueMax) throw new RangeError(`${this.#queueMax} messages already wait for a key`);
      this.#outbox.push(bytes);
      return;
    }
    this.#session.multicast(this.name, this.#sealer.seal(bytes), { service: 'agreed', messType: DATA_MESS_TYPE });
  }

  /** Leaves the group and stops listening; the session stays open. Queued messages are discarded. */
  close(): void {
    this.#detach();
    this.#clearRosterTimer();
    this.#forgetKeys();
    this.#outbox = [];
    try {
      this.#session.leave(this.name);
    } catch {
      // The session is gone already.
    }
  }

  #onMembership(message: MembershipMessage): void {
    if (message.group !== this.name) return;
    if (message.transitional) {
      this.#sealer = null; // the view is ending: what we send now belongs to the next one
      return;
    }
    if (message.cause === 'self-leave') {
      this.#forgetKeys();
      return;
    }
    if (message.myIndex < 0) return; // not a view of ours (the daemon always lists the receiver)
    this.#viewAtMs = performance.now();
    this.#sealer = null;
    this.#previous = this.#current;
    this.#current = null;
    this.#inbox = [];
    const view = { group: this.name, gid: message.gid, members: message.members };
    this.#apply(this.#agreement.startView(view, randomBytes(32)));
    this.#armRosterTimer();
  }

  #onMessage(message: DataMessage): void {
    if (!message.groups.includes(this.name)) return;
    if (message.messType === AGREEMENT_MESS_TYPE) {
      this.#apply(this.#agreement.receive(message.sender, message.data));
      // The deadline counts from the last agreement message: slow members (a busy machine, a big
      // group) keep the roster open; only silence closes it.
      if (this.#rosterTimer !== null && !this.#agreement.rosterClosed) this.#armRosterTimer();
    } else if (message.messType === DATA_MESS_TYPE) {
      this.#openOrHold(message);
    }
  }

  #openOrHold(message: DataMessage): void {
    const tag = envelopeViewTag(message.data);
    if (tag === null) return this.#drop('malformed');
    const key = [this.#current, this.#previous].find((candidate): candidate is EstablishedKey => candidate?.viewTag === tag);
    if (key === undefined) {
      if (tag !== this.#agreement.viewTag || !this.#agreement.pending) return this.#drop('unknown-view');
      if (this.#inbox.length >= this.#queueMax) return this.#drop('queue-full');
      this.#inbox.push(message);
      return;
    }
    const opened = openEnvelope(this.name, key, message.sender, message.data);
    if (!opened.ok) return this.#drop(opened.reason);
    // Each sender numbers its messages in a view and Spread keeps a sender's order: a number seen is a replay.
    let lastCounters = this.#lastCounters.get(key);
    if (lastCounters === undefined) this.#lastCounters.set(key, (lastCounters = new Map()));
    const last = lastCounters.get(message.sender);
    if (last !== undefined && opened.counter <= last) return this.#drop('replay');
    lastCounters.set(message.sender, opened.counter);
    this.emit('message', { data: opened.plaintext, sender: message.sender, identity: opened.identity });
  }

  #apply(output: AgreementOutput): void {
    for (const reason of output.rejected) this.#drop(reason);
    for (const bytes of output.send) this.#session.multicast(this.name, bytes, { service: 'agreed', messType: AGREEMENT_MESS_TYPE });
    if (output.excluded !== null) {
      this.#clearRosterTimer();
      this.emit('excluded', { viewTag: this.#agreement.viewTag!, reason: output.excluded });
      if (output.excluded === 'late') this.#rejoin();
    }
    if (output.established !== null) this.#established(output.established);
  }

  #established(key: EstablishedKey): void {
    this.#clearRosterTimer();
    this.#current = key;
    this.#sealer = new Sealer(this.name, key, this.#session.privateGroup);
    const readyAtMs = performance.now();
    const rekeyMs = readyAtMs - this.#viewAtMs;
    this.emit('ready', { viewTag: key.viewTag, members: key.participants, fingerprint: key.fingerprint, rekeyMs, viewAtMs: this.#viewAtMs, readyAtMs });
    this.emit('rekey', { ms: rekeyMs, members: key.participants.length });
    const held = this.#inbox;
    this.#inbox = [];
    for (const message of held) this.#openOrHold(message);
    const outbox = this.#outbox;
    this.#outbox = [];
    for (const data of outbox) {
      try {
        this.send(data);
      } catch {
        this.#drop('send-failed'); // the session closed under us: nothing else to do from an event handler
      }
    }
  }

  /** Leaves and joins again: two views, and in the second the others wait for this member's leaf. */
  #rejoin(): void {
    try {
      this.#session.leave(this.name);
      this.#session.join(this.name);
    } catch {
      // The session is closing: nothing to rejoin.
    }
  }

  #armRosterTimer(): void {
    this.#clearRosterTimer();
    this.#rosterTimer = setTimeout(() => {
      this.#rosterTimer = null;
      if (this.#agreement.rosterClosed) return;
      this.#apply(this.#agreement.rosterDeadline());
      this.#armRosterTimer(); // until the roster closes: the leader's own leaf may not be back yet
    }, this.#rosterWaitMs);
    this.#rosterTimer.unref();
  }

  #clearRosterTimer(): void {
    if (this.#rosterTimer !== null) clearTimeout(this.#rosterTimer);
    this.#rosterTimer = null;
  }

  #forgetKeys(): void {
    this.#current = null;
    this.#previous = null;
    this.#sealer = null;
    this.#inbox = [];
  }

  #drop(reason: string): void {
    this.#drops.set(reason, (this.#drops.get(reason) ?? 0) + 1);
  }
}

/** Joins `name` on `session` as an end-to-end encrypted group; see SecureGroup. */
export function secureGroup(session: Session, name: string, options: SecureGroupOptions): SecureGroup {
  return new SecureGroup(session, name, options);
}
