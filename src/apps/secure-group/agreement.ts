/**
 * Contributory group key agreement for one member, as a pure state machine:
 * tree-based group Diffie–Hellman (TGDH, Kim, Perrig and Tsudik) over X25519,
 * run afresh on every regular view. Inputs are the view, the agreement messages
 * in the order the group delivered them (AGREED: the same order everywhere), the
 * roster deadline and the fresh leaf secret (the caller's randomness); outputs are
 * messages to multicast, the key once established, and counted rejections. No
 * I/O, clock or randomness in here, so a test can drive it deterministically.
 *
 * Per view:
 *  1. Every member multicasts a signed leaf: its identity and the blinded key of a
 *     fresh leaf secret. Receivers check the signature against the trust list.
 *  2. The roster closes once every view member was heard from (a leaf, valid or
 *     not), or when the first member with a valid leaf (the roster leader) sends
 *     `close` after a deadline — so silent members (plain Spread clients joined to
 *     the group) cannot stall the key. A member whose valid leaf was seen before
 *     is known to be secure: the leader gives it ten deadlines, not one. The participants are the members with a valid
 *     leaf delivered before that point, in the view's order: the same list everywhere.
 *  3. The key tree is a balanced tree over the participants (key-tree.ts). Each
 *     member climbs its path: a node's secret comes from one child's secret and
 *     the other child's blinded key. The sponsor of each internal node (its
 *     leftmost member) multicasts the node's blinded key once it knows its secret.
 *  4. At the root, the group key is HKDF(root secret; salt = the view's group id;
 *     info = group name, group id and a hash of the participant list).
 *
 * Deviation from TGDH: TGDH keeps the tree across views and only the sponsors
 * refresh their leaves (one round for a join or leave). Here every member takes a
 * fresh leaf on every view and the tree is rebuilt from the roster, which costs
 * ⌈log2 n⌉ + 1 rounds but treats join, leave, crash, partition and merge alike,
 * needs no tree state to survive a partition, and makes every view's key
 * independent of every other's (a departed member's secrets are in no later tree,
 * a joiner's in no earlier one).
 */
import { createHash, hkdfSync, type KeyObject } from 'node:crypto';
import type { GroupId } from '../../client/index.js';
import type { ResolvedIdentity } from './identity.js';
import { nodeName, pathOf, sponsorOf, type TreeNode } from './key-tree.js';
import { decodeAgreement, encodeAgreement, MalformedMessageError, type AgreementMessage, type SignatureCache } from './wire.js';
import { blindedKey, parentSecret, X25519_KEY_BYTES } from './x25519.js';

/** A regular view of the group, as the client API delivered it. */
export interface ViewInput {
  group: string;
  gid: GroupId;
  /** The view's members (private groups) in the daemons' order. */
  members: readonly string[];
}

export interface Participant {
  /** Private group of the member's session. */
  member: string;
  /** The identity it proved with its signed leaf. */
  identity: string;
}

export interface EstablishedKey {
  /** Names the view (group, group id and members); carried by every encrypted message. */
  viewTag: string;
  gid: GroupId;
  participants: Participant[];
  /** The 32-byte group key of this view. */
  key: Buffer;
  /** First 16 hex digits of SHA-256(key): safe to log and compare. */
  fingerprint: string;
}

export type RejectReason =
  | 'malformed'
  | 'no-view'
  | 'stale-view'
  | 'sender-mismatch'
  | 'not-in-view'
  | 'untrusted'
  | 'bad-signature'
  | 'duplicate-leaf'
  | 'late-leaf'
  | 'not-leader'
  | 'early-node'
  | 'not-sponsor'
  | 'bad-blinded-key';

export interface AgreementOutput {
  /** Agreement messages to multicast to the group (AGREED), in order. */
  send: Buffer[];
  /** The view's key, when this input completed it. */
  established: EstablishedKey | null;
  /**
   * This member gets no key for this view: its own leaf was refused ('untrusted'), or the roster
   * closed before its leaf was delivered ('late'; a new view will wait for it, see rosterDeadline).
   */
  excluded: 'untrusted' | 'late' | null;
  rejected: RejectReason[];
}

interface ViewState {
  input: ViewInput;
  tag: string;
  leafSecret: Buffer;
  heard: Set<string>;
  leaves: Map<string, { identity: string; blindedKey: Buffer }>;
  leader: string | null;
  /** Roster deadlines that passed in this view (one per rosterWaitMs of silence). */
  deadlines: number;
  tree: TreeState | null;
  excluded: boolean;
  failed: boolean;
  established: EstablishedKey | null;
}

interface TreeState {
  participants: Participant[];
  myIndex: number;
  path: TreeNode[];
  coPath: TreeNode[];
  /** Co-path node name → its step on my path. */
  coPathSteps: Map<string, number>;
  coPathKeys: Map<number, Buffer>;
  /** Secrets of my path's nodes computed so far, leaf first. */
  secrets: Buffer[];
}

const KEY_LABEL = 'tspread secure-group key v1';
/** Roster deadlines the leader waits for an unheard member known to be secure. */
export const KNOWN_MEMBER_PATIENCE = 10;
/** Members remembered as secure; the longest unseen is forgotten first. */
const KNOWN_MEMBERS_MAX = 4096;

/** The tag naming a view: group, group id and members, hashed. */
export function viewTagOf(view: ViewInput): string {
  const hash = createHash('sha256').update(view.group).update('\0');
  hash.update(`${view.gid.procId}.${view.gid.time}.${view.gid.index}\0`);
  for (const member of view.members) hash.update(member).update('\0');
  return hash.digest('hex').slice(0, 32);
}

export function groupIdBytes(gid: GroupId): Buffer {
  const bytes = Buffer.alloc(12);
  bytes.writeUInt32BE(gid.procId >>> 0, 0);
  bytes.writeUInt32BE(gid.time >>> 0, 4);
  bytes.writeInt32BE(gid.index | 0, 8);
  return bytes;
}

export class KeyAgreement {
  readonly me: string;
  readonly #identity: ResolvedIdentity;
  #trust: ReadonlyMap<string, KeyObject>;
  readonly #signatures: SignatureCache | undefined;
  #view: ViewState | null = null;
  /** Members whose valid leaf this member has seen (in time or late): secure members it knows to wait for. */
  readonly #knownMembers = new Set<string>();

  /** `signatures`: a cache shared with the other members this process hosts (optional). */
  constructor(me: string, identity: ResolvedIdentity, trust: ReadonlyMap<string, KeyObject>, signatures?: SignatureCache) {
    this.me = me;
    this.#identity = identity;
    this.#trust = trust;
    this.#signatures = signatures;
  }

  /** The current view's tag, or null before the first view. */
  get viewTag(): string | null {
    return this.#view?.tag ?? null;
  }

  /** Replaces the trust list; leaves already accepted in the current view stay accepted. */
  setTrust(trust: ReadonlyMap<string, KeyObject>): void {
    this.#trust = trust;
  }

  /** True once the current view's roster is closed (or this member was left out of it). */
  get rosterClosed(): boolean {
    return this.#view !== null && (this.#view.tree !== null || this.#view.excluded);
  }

  /** True between a view and its key (or exclusion). */
  get pending(): boolean {
    const view = this.#view;
    return view !== null && view.established === null && !view.excluded && !view.failed;
  }

  /** A new regular view: forget the old one and send this member's leaf. `leafSecret`: 32 fresh random bytes. */
  startView(input: ViewInput, leafSecret: Uint8Array): AgreementOutput {
    if (leafSecret.length !== X25519_KEY_BYTES) throw new RangeError('leaf secret must be 32 bytes');
    if (!input.members.includes(this.me)) throw new Error(`${this.me} is not a member of the view it was given`);
    const view: ViewState = {
      input: { group: input.group, gid: { ...input.gid }, members: [...input.members] },
      tag: viewTagOf(input),
      leafSecret: Buffer.from(leafSecret),
      heard: new Set(),
      leaves: new Map(),
      leader: null,
      deadlines: 0,
      tree: null,
      excluded: false,
      failed: false,
      established: null,
    };
    this.#view = view;
    const output = emptyOutput();
    const leaf: AgreementMessage = {
      kind: 'leaf',
      view: view.tag,
      sender: this.me,
      identity: this.#identity.name,
      blindedKey: blindedKey(view.leafSecret),
    };
    output.send.push(encodeAgreement(leaf, this.#identity.privateKey));
    return output;
  }

  /**
   * The roster deadline passed (rosterWaitMs without an agreement message): the leader closes the
   * roster; others do nothing, and the caller re-arms while the roster is open. While a member known
   * to be secure (its valid leaf was seen before) is still unheard, the leader gives it
   * KNOWN_MEMBER_PATIENCE deadlines: it is slow rather than silent, and if it died Spread sends the
   * next view. The first deadline is for members nobody knows to be secure (plain clients).
   */
  rosterDeadline(): AgreementOutput {
    const output = emptyOutput();
    const view = this.#view;
    if (view === null || view.tree !== null || view.excluded || view.leader !== this.me) return output;
    view.deadlines += 1;
    const knownUnheard = view.input.members.some((member) => this.#knownMembers.has(member) && !view.heard.has(member));
    if (knownUnheard && view.deadlines < KNOWN_MEMBER_PATIENCE) return output;
    output.send.push(encodeAgreement({ kind: 'close', view: view.tag, sender: this.me }, this.#identity.privateKey));
    return output;
  }

  /** An agreement message the group delivered (this member's own ones included), from Spread sender `sender`. */
  receive(sender: string, bytes: Uint8Array): AgreementOutput {
    const output = emptyOutput();
    const view = this.#view;
    if (view === null) return rejected(output, 'no-view');
    let received;
    try {
      received = decodeAgreement(bytes, this.#signatures);
    } catch (error) {
      if (error instanceof MalformedMessageError) return rejected(output, 'malformed');
      throw error;
    }
    const { message } = received;
    if (message.view !== view.tag) return rejected(output, 'stale-view');
    if (message.sender !== sender) return rejected(output, 'sender-mismatch');
    if (!view.input.members.includes(sender)) return rejected(output, 'not-in-view');
    if (message.kind === 'leaf') {
      if (view.excluded) return output;
      if (view.heard.has(sender)) return rejected(output, 'duplicate-leaf');
      view.heard.add(sender);
      const publicKey = this.#trust.get(message.identity);
      if (publicKey === undefined) return this.#refusedLeaf(view, sender, rejected(output, 'untrusted'));
      if (!received.verifiedBy(publicKey)) return this.#refusedLeaf(view, sender, rejected(output, 'bad-signature'));
      this.#know(sender);
      if (view.tree !== null) return rejected(output, 'late-leaf'); // known now: the next view waits for it
      view.leaves.set(sender, { identity: message.identity, blindedKey: message.blindedKey });
      view.leader ??= sender;
      if (view.heard.size === view.input.members.length) this.#closeRoster(view, output);
    } else if (message.kind === 'close') {
      if (view.tree !== null || view.excluded) return output; // closed already, by hearing from everyone
      if (sender !== view.leader) return rejected(output, 'not-leader');
      if (!received.verifiedBy(this.#trustedKeyOf(view, sender))) return rejected(output, 'bad-signature');
      this.#closeRoster(view, output);
    } else {
      const tree = view.tree;
      if (tree === null) return view.excluded ? output : rejected(output, 'early-node');
      const step = tree.coPathSteps.get(message.node);
      if (step === undefined) return output; // not on my co-path: someone else's business
      if (sender !== tree.participants[sponsorOf(tree.coPath[step])].member) return rejected(output, 'not-sponsor');
      if (!received.verifiedBy(this.#trustedKeyOf(view, sender))) return rejected(output, 'bad-signature');
      if (!tree.coPathKeys.has(step)) tree.coPathKeys.set(step, message.blindedKey);
      this.#climb(view, tree, output);
    }
    return output;
  }

  /** A leaf that failed the trust check; if it is this member's own, this member is out of the view. */
  #refusedLeaf(view: ViewState, sender: string, output: AgreementOutput): AgreementOutput {
    if (sender === this.me) {
      view.excluded = true;
      output.excluded = 'untrusted';
    } else if (view.tree === null && view.heard.size === view.input.members.length) {
      this.#closeRoster(view, output);
    }
    return output;
  }

  #know(member: string): void {
    this.#knownMembers.delete(member); // re-inserted last: the set forgets the longest unseen first
    this.#knownMembers.add(member);
    if (this.#knownMembers.size > KNOWN_MEMBERS_MAX) this.#knownMembers.delete(this.#knownMembers.values().next().value!);
  }

  #trustedKeyOf(view: ViewState, sender: string): KeyObject {
    const identity = view.leaves.get(sender)?.identity;
    const key = identity === undefined ? undefined : this.#trust.get(identity);
    if (key === undefined) throw new Error(`no trusted key for ${sender}`); // callers check the sender first
    return key;
  }

  #closeRoster(view: ViewState, output: AgreementOutput): void {
    const participants = view.input.members.flatMap((member) => {
      const leaf = view.leaves.get(member);
      return leaf === undefined ? [] : [{ member, identity: leaf.identity }];
    });
    const myIndex = participants.findIndex((participant) => participant.member === this.me);
    if (myIndex < 0) {
      view.excluded = true;
      output.excluded = 'late';
      return;
    }
    const { path, coPath } = pathOf(myIndex, participants.length);
    const names = participants.map((participant) => participant.member);
    const tree: TreeState = {
      participants,
      myIndex,
      path,
      coPath,
      coPathSteps: new Map(coPath.map((node, step) => [nodeName(names, node), step])),
      coPathKeys: new Map(),
      secrets: [view.leafSecret],
    };
    // Leaves' blinded keys came with the roster.
    coPath.forEach((node, step) => {
      if (node.hi - node.lo === 1) tree.coPathKeys.set(step, view.leaves.get(participants[node.lo].member)!.blindedKey);
    });
    view.tree = tree;
    this.#climb(view, tree, output);
  }

  /** Computes up the path as far as the co-path keys at hand allow, sponsoring nodes on the way. */
  #climb(view: ViewState, tree: TreeState, output: AgreementOutput): void {
    while (!view.failed && view.established === null) {
      const step = tree.secrets.length - 1;
      if (step === tree.path.length - 1) {
        view.established = this.#establish(view, tree);
        output.established = view.established;
        return;
      }
      const siblingKey = tree.coPathKeys.get(step);
      if (siblingKey === undefined) return;
      let secret: Buffer;
      try {
        secret = parentSecret(tree.secrets[step], siblingKey);
      } catch {
        view.failed = true; // a low-order point: no key for this view
        rejected(output, 'bad-blinded-key');
        return;
      }
      tree.secrets.push(secret);
      const node = tree.path[step + 1];
      const isRoot = step + 1 === tree.path.length - 1;
      if (!isRoot && sponsorOf(node) === tree.myIndex) {
        const names = tree.participants.map((participant) => participant.member);
        const message: AgreementMessage = {
          kind: 'node',
          view: view.tag,
          sender: this.me,
          node: nodeName(names, node),
          blindedKey: blindedKey(secret),
        };
        output.send.push(encodeAgreement(message, this.#identity.privateKey));
      }
    }
  }

  #establish(view: ViewState, tree: TreeState): EstablishedKey {
    const rootSecret = tree.secrets[tree.secrets.length - 1];
    const { procId, time, index } = view.input.gid;
    // HKDF's info is capped (1024 bytes in node:crypto): the roster goes in as its hash.
    const roster = createHash('sha256');
    for (const participant of tree.participants) roster.update(`${participant.member}=${participant.identity}\0`);
    const info = [KEY_LABEL, view.input.group, `${procId}.${time}.${index}`, roster.digest('hex')].join('\0');
    const key = Buffer.from(hkdfSync('sha256', rootSecret, groupIdBytes(view.input.gid), info, 32));
    return {
      viewTag: view.tag,
      gid: { ...view.input.gid },
      participants: tree.participants,
      key,
      fingerprint: createHash('sha256').update(key).digest('hex').slice(0, 16),
    };
  }
}

function emptyOutput(): AgreementOutput {
  return { send: [], established: null, excluded: null, rejected: [] };
}

function rejected(output: AgreementOutput, reason: RejectReason): AgreementOutput {
  output.rejected.push(reason);
  return output;
}
