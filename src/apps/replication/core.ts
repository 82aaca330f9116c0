/**
 * The replication engine's protocol as a pure state machine (Amir and Tutu, "From Total Order
 * to Database Replication", ICDCS 2002), with no sockets, files or clocks. Inputs: views,
 * transitional signals and messages as the group delivers them, submits. Outputs (`takeEffects`):
 * records to log, messages to multicast, green actions to apply, checkpoints — to be carried
 * out IN ORDER, every log record made durable before any later multicast or apply.
 *
 * Phases, as in the paper: in a primary's regular configuration a delivered action is green at
 * once (SAFE delivery: every member has it). In its transitional configuration it is yellow —
 * it may be green at members that delivered it in the regular one — and the next primary orders
 * the newest yellow run first. Anywhere else it is red. On each regular view the members send
 * their red actions and their state; the most advanced one retransmits the greens others miss
 * (a snapshot first when its log no longer reaches back); then, if the component holds a quorum
 * (voting.ts), each member logs the attempt and multicasts a CPC, and once every member's CPC
 * is delivered the primary is installed: a membership action, the yellow run, then the reds.
 */
import {
  actionKey,
  compareActions,
  decodeActions,
  encodeActions,
  GreenIds,
  MalformedError,
  SYSTEM_ORIGIN,
  type Action,
  type GreenAction,
} from './action.js';
import type { Checkpoint, DurableState, LogRecord, YellowRun } from './records.js';
import { isPrimaryQuorum, newestPrimary, type PrimaryRecord } from './voting.js';

export const MessageType = { actions: 1, reds: 2, state: 3, greens: 4, snapshot: 5, cpc: 6 } as const;

/** Wire messages stay well under Spread's 143 152-byte limit. */
export const CHUNK_BYTES = 100_000;

export type Phase = 'disconnected' | 'exchange-states' | 'exchange-actions' | 'construct' | 'no' | 'non-prim' | 'reg-prim' | 'trans-prim';

export type Effect =
  | { kind: 'log'; record: LogRecord }
  | { kind: 'multicast'; messType: number; payload: Buffer }
  /** A green action to apply; `origin === SYSTEM_ORIGIN` carries the new primary's members (JSON). */
  | { kind: 'apply'; action: GreenAction }
  /** Snapshot the machine now (after every earlier apply) and replace the log by this checkpoint. */
  | { kind: 'checkpoint'; checkpoint: Checkpoint }
  /** Multicast the machine's snapshot now, with `snapshotMessages(position, greenIds, snapshot)`. */
  | { kind: 'send-snapshot'; view: string; position: number; greenIds: Record<string, [number, number[]]> }
  /** Restore the machine from a transferred snapshot and make `checkpoint` the durable state. */
  | { kind: 'restore'; checkpoint: Checkpoint; snapshot: Buffer };

interface StateMessage {
  view: string;
  name: string;
  green: number;
  lastPrimary: PrimaryRecord | null;
  attempts: PrimaryRecord[];
  yellow: YellowRun | null;
  /** Connected without a break since the last primary it installed (see voting.ts). */
  informed: boolean;
}

interface Decision {
  maxGreen: number;
  quorum: boolean;
  attempt: PrimaryRecord;
  yellowKeys: string[];
  /** The red actions every member holds at the decision (all STATEs came in the regular configuration). */
  redKeys: string[];
}

export interface CoreOptions {
  name: string;
  /** Unique per incarnation of this replica: names its actions. */
  origin: string;
  outsidePrimary: 'refuse' | 'queue';
  /** Greens between checkpoints (the log is compacted at each). */
  checkpointEvery: number;
}

export class EngineCore {
  readonly name: string;
  readonly origin: string;
  readonly #options: CoreOptions;
  #effects: Effect[] = [];
  #phase: Phase = 'disconnected';
  #me: string | null = null;
  #view: { key: string; members: string[] } | null = null;
  #states = new Map<string, StateMessage>();
  #cpcFrom = new Set<string>();
  #decision: Decision | null = null;
  #nextSeq = 1;
  #green: number;
  /** Greens after the last checkpoint, kept to retransmit. */
  #floor: number;
  #tail: GreenAction[];
  #greenIds: GreenIds;
  #pending: Map<string, Action>;
  #yellow: YellowRun | null;
  #lastPrimary: PrimaryRecord | null;
  #attempts: PrimaryRecord[];
  #snapshotChunks: { view: string; parts: Buffer[]; received: number } | null = null;
  #primaryMembers: string[] = [];
  #informed = false;
  /** This replica's submitted actions not yet delivered back to it: held as red if the session is lost. */
  readonly #unconfirmed = new Map<number, Action>();

  constructor(options: CoreOptions, durable: DurableState) {
    this.#options = options;
    this.name = options.name;
    this.origin = options.origin;
    this.#floor = durable.checkpoint.position;
    this.#tail = [...durable.greens];
    this.#green = this.#floor + this.#tail.length;
    this.#greenIds = durable.greenIds;
    this.#pending = durable.pending;
    this.#yellow = durable.yellow;
    this.#lastPrimary = durable.lastPrimary;
    this.#attempts = durable.attempts;
  }

  get phase(): Phase {
    return this.#phase;
  }

  get lastGreen(): number {
    return this.#green;
  }

  get redCount(): number {
    return this.#pending.size;
  }

  get primary(): boolean {
    return this.#phase === 'reg-prim' || this.#phase === 'trans-prim';
  }

  /** Members (replica names) of the primary this replica is in; empty outside one. */
  get members(): string[] {
    return this.primary ? this.#primaryMembers : [];
  }

  takeEffects(): Effect[] {
    const effects = this.#effects;
    this.#effects = [];
    return effects;
  }

  connected(me: string): void {
    this.#me = me;
  }

  disconnected(): void {
    this.#me = null;
    this.#informed = false;
    // They may have reached the others or not: as red they reach the next primary either way, once.
    for (const action of this.#unconfirmed.values()) if (!this.#greenIds.has(action)) this.#addPending(action, null);
    this.#unconfirmed.clear();
    this.#view = null;
    this.#phase = 'disconnected';
    this.#states.clear();
    this.#decision = null;
  }

  /**
   * A new action from this replica: the ACTIONS payload to multicast, or null when refused.
   * With policy 'queue' and no group at all, the action is held as red right away.
   */
  submit(body: Buffer): { action: Action; payload: Buffer | null } | null {
    const outside = this.#phase === 'non-prim' || this.#phase === 'disconnected';
    if (outside && this.#options.outsidePrimary === 'refuse') return null;
    const action: Action = { origin: this.origin, seq: this.#nextSeq++, body };
    if (this.#phase === 'disconnected') {
      this.#addPending(action, null);
      return { action, payload: null };
    }
    this.#unconfirmed.set(action.seq, action);
    return { action, payload: encodeActions([action]) };
  }

  transitional(): void {
    if (this.#phase === 'reg-prim') this.#phase = 'trans-prim';
    else if (this.#phase === 'construct') this.#phase = 'no';
    else if (this.#phase === 'exchange-states' || this.#phase === 'exchange-actions') this.#phase = 'non-prim';
  }

  view(key: string, members: string[]): void {
    this.#view = { key, members };
    this.#states.clear();
    this.#cpcFrom.clear();
    this.#decision = null;
    this.#snapshotChunks = null;
    this.#phase = 'exchange-states';
    const pending = [...this.#pending.values()];
    for (const chunk of chunkActions(pending)) this.#multicast(MessageType.reds, encodeActions(chunk));
    const state: StateMessage = {
      view: key,
      name: this.name,
      green: this.#green,
      lastPrimary: this.#lastPrimary,
      attempts: this.#attempts,
      yellow: this.#yellow,
      informed: this.#informed,
    };
    this.#multicast(MessageType.state, Buffer.from(JSON.stringify(state)));
  }

  /**
   * A delivered message; malformed ones are dropped (they must not stop a replica), and so is
   * anything from a sender outside the view: Spread lets non-members multicast to a group.
   */
  message(sender: string, messType: number, data: Buffer): void {
    if (this.#view === null || !this.#view.members.includes(sender)) return;
    try {
      switch (messType) {
        case MessageType.actions:
          for (const action of decodeActions(data)) this.#onAction(action);
          break;
        case MessageType.reds:
          for (const action of decodeActions(data)) if (!this.#greenIds.has(action)) this.#addPending(action, null);
          break;
        case MessageType.state:
          this.#onState(sender, parseState(data));
          break;
        case MessageType.greens:
          for (const action of decodeActions(data)) if (action.position === this.#green + 1) this.#addGreen(action);
          this.#checkCaughtUp();
          break;
        case MessageType.snapshot:
          this.#onSnapshotChunk(data);
          break;
        case MessageType.cpc:
          this.#onCpc(sender, parseCpc(data));
          break;
      }
    } catch (error) {
      if (!(error instanceof MalformedError || error instanceof SyntaxError || error instanceof RangeError)) throw error;
    }
  }

  #onAction(action: Action): void {
    if (action.origin === this.origin) this.#unconfirmed.delete(action.seq);
    if (action.origin === SYSTEM_ORIGIN || this.#greenIds.has(action)) return;
    if (this.#phase === 'reg-prim') this.#addGreen(action);
    else if (this.#phase === 'trans-prim') this.#addPending(action, this.#lastPrimary!.index);
    else this.#addPending(action, null);
  }

  #onState(sender: string, state: StateMessage): void {
    if (this.#view === null || state.view !== this.#view.key || this.#phase !== 'exchange-states') return;
    if (!this.#view.members.includes(sender)) return;
    this.#states.set(sender, state);
    if (this.#states.size === this.#view.members.length) this.#decide();
  }

  /** Every member's state is in: all members compute the same decision from the same states. */
  #decide(): void {
    const states = [...this.#states.entries()].sort((a, b) => (a[1].name < b[1].name ? -1 : a[1].name > b[1].name ? 1 : 0));
    const names = new Set(states.map(([, state]) => state.name));
    const informed = new Set(states.filter(([, state]) => state.informed === true).map(([, state]) => state.name));
    let maxGreen = 0;
    let minGreen = Infinity;
    for (const [, state] of states) {
      maxGreen = Math.max(maxGreen, state.green);
      minGreen = Math.min(minGreen, state.green);
    }
    const donor = states.find(([, state]) => state.green === maxGreen)!;
    const lastPrimaries = states.map(([, state]) => state.lastPrimary);
    const attempts = states.flatMap(([, state]) => state.attempts);
    const newest = newestPrimary(lastPrimaries);
    let index = newest?.index ?? 0;
    for (const attempt of attempts) index = Math.max(index, attempt.index);
    // The newest primary's longest yellow run may hold actions green at absent members: it goes first.
    let yellowKeys: string[] = [];
    for (const [, state] of states) {
      if (state.yellow !== null && newest !== null && state.yellow.prim === newest.index && state.yellow.keys.length > yellowKeys.length) {
        yellowKeys = state.yellow.keys;
      }
    }
    this.#decision = {
      maxGreen,
      // Two replicas under one name would make the vote meaningless: no primary until that is fixed.
      quorum: names.size === states.length && isPrimaryQuorum(names, informed, lastPrimaries, attempts),
      attempt: { index: index + 1, members: [...names].sort() },
      yellowKeys,
      redKeys: [...this.#pending.values()].sort(compareActions).map(actionKey),
    };
    this.#phase = 'exchange-actions';
    if (donor[0] === this.#me && minGreen < maxGreen) this.#retransmit(minGreen);
    this.#checkCaughtUp();
  }

  #retransmit(from: number): void {
    if (from < this.#floor) {
      this.#effects.push({ kind: 'send-snapshot', view: this.#view!.key, position: this.#green, greenIds: this.#greenIds.toJSON() });
      return;
    }
    for (const chunk of chunkActions(this.#tail.slice(from - this.#floor))) this.#multicast(MessageType.greens, encodeActions(chunk));
  }

  #checkCaughtUp(): void {
    const decision = this.#decision;
    if (this.#phase !== 'exchange-actions' || decision === null || this.#green < decision.maxGreen) return;
    if (!decision.quorum) {
      this.#phase = 'non-prim';
      return;
    }
    this.#attempts = [...this.#attempts, decision.attempt];
    this.#logMeta();
    this.#phase = 'construct';
    this.#multicast(MessageType.cpc, Buffer.from(JSON.stringify({ view: this.#view!.key })));
    this.#maybeInstall();
  }

  #onCpc(sender: string, cpc: { view: string }): void {
    if (this.#view === null || cpc.view !== this.#view.key) return;
    this.#cpcFrom.add(sender);
    this.#maybeInstall();
  }

  #maybeInstall(): void {
    if (this.#phase !== 'construct' && this.#phase !== 'no') return;
    if (!this.#view!.members.every((member) => this.#cpcFrom.has(member))) return;
    const decision = this.#decision!;
    const inTransitional = this.#phase === 'no';
    this.#lastPrimary = decision.attempt;
    this.#attempts = [];
    this.#informed = true;
    this.#logMeta();
    this.#primaryMembers = decision.attempt.members;
    this.#addGreen({ origin: SYSTEM_ORIGIN, seq: decision.attempt.index, body: Buffer.from(JSON.stringify(decision.attempt.members)) });
    for (const key of [...decision.yellowKeys, ...decision.redKeys]) {
      const action = this.#pending.get(key);
      if (action !== undefined && !this.#greenIds.has(action)) this.#addGreen(action);
    }
    // Reds delivered after the decision: green now in the regular configuration, where every member
    // delivered the same ones; in the transitional one this member may have missed some, so they
    // stay a yellow run that the next primary orders first.
    const leftovers = [...this.#pending.values()].filter((action) => !this.#greenIds.has(action)).sort(compareActions);
    this.#yellow = null;
    if (inTransitional) for (const action of leftovers) this.#addPending(action, decision.attempt.index);
    else {
      for (const action of leftovers) this.#addGreen(action);
      this.#pending.clear();
    }
    this.#phase = inTransitional ? 'trans-prim' : 'reg-prim';
  }

  #onSnapshotChunk(data: Buffer): void {
    const index = data.readUInt32LE(0);
    const count = data.readUInt32LE(4);
    const viewLength = data.readUInt8(8);
    const view = data.toString('latin1', 9, 9 + viewLength);
    if (this.#view === null || view !== this.#view.key || this.#phase !== 'exchange-actions') return;
    if (index === 0) this.#snapshotChunks = { view, parts: [], received: 0 };
    const assembly = this.#snapshotChunks;
    if (assembly === null || assembly.view !== view || assembly.received !== index) return;
    assembly.parts.push(Buffer.from(data.subarray(9 + viewLength)));
    assembly.received++;
    if (assembly.received < count) return;
    this.#snapshotChunks = null;
    const whole = Buffer.concat(assembly.parts);
    const metaLength = whole.readUInt32LE(0);
    const meta = JSON.parse(whole.toString('utf8', 4, 4 + metaLength)) as { position: number; greenIds: Record<string, [number, number[]]> };
    if (!Number.isSafeInteger(meta?.position) || meta.position <= this.#green) return;
    let greenIds: GreenIds;
    try {
      greenIds = GreenIds.fromJSON(meta.greenIds);
    } catch {
      throw new MalformedError('malformed snapshot');
    }
    this.#green = meta.position;
    this.#floor = meta.position;
    this.#tail = [];
    this.#greenIds = greenIds;
    for (const [key, action] of this.#pending) if (this.#greenIds.has(action)) this.#pending.delete(key);
    if (this.#yellow !== null) this.#yellow = { prim: this.#yellow.prim, keys: this.#yellow.keys.filter((key) => this.#pending.has(key)) };
    this.#effects.push({ kind: 'restore', checkpoint: this.#checkpoint(), snapshot: Buffer.from(whole.subarray(4 + metaLength)) });
    this.#checkCaughtUp();
  }

  #addGreen(action: Action): void {
    const green: GreenAction = { origin: action.origin, seq: action.seq, body: action.body, position: ++this.#green };
    this.#greenIds.add(green);
    if (this.#pending.size > 0) this.#pending.delete(actionKey(green));
    this.#tail.push(green);
    this.#effects.push({ kind: 'log', record: { kind: 'green', action: green } }, { kind: 'apply', action: green });
    if (this.#green - this.#floor >= this.#options.checkpointEvery) {
      this.#floor = this.#green;
      this.#tail = [];
      this.#effects.push({ kind: 'checkpoint', checkpoint: this.#checkpoint() });
    }
  }

  #addPending(action: Action, yellowOf: number | null): void {
    const key = actionKey(action);
    if (yellowOf !== null) {
      if (this.#yellow === null || this.#yellow.prim !== yellowOf) this.#yellow = { prim: yellowOf, keys: [] };
      if (!this.#yellow.keys.includes(key)) this.#yellow.keys.push(key);
      this.#pending.set(key, action);
      this.#effects.push({ kind: 'log', record: { kind: 'yellow', prim: yellowOf, action } });
      return;
    }
    if (this.#pending.has(key)) return;
    this.#pending.set(key, action);
    this.#effects.push({ kind: 'log', record: { kind: 'red', action } });
  }

  #checkpoint(): Checkpoint {
    return {
      position: this.#green,
      greenIds: this.#greenIds.toJSON(),
      lastPrimary: this.#lastPrimary,
      attempts: this.#attempts,
      pending: [...this.#pending.values()],
      yellow: this.#yellow,
    };
  }

  #logMeta(): void {
    this.#effects.push({ kind: 'log', record: { kind: 'meta', lastPrimary: this.#lastPrimary, attempts: this.#attempts } });
  }

  #multicast(messType: number, payload: Buffer): void {
    this.#effects.push({ kind: 'multicast', messType, payload });
  }
}

function chunkActions<T extends Action>(actions: readonly T[]): T[][] {
  const chunks: T[][] = [];
  let current: T[] = [];
  let bytes = 0;
  for (const action of actions) {
    const size = action.body.length + action.origin.length + 32;
    if (current.length > 0 && bytes + size > CHUNK_BYTES) {
      chunks.push(current);
      current = [];
      bytes = 0;
    }
    current.push(action);
    bytes += size;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

/** The SNAPSHOT messages carrying a machine snapshot at `position` to the members of `view`. */
export function snapshotMessages(view: string, position: number, greenIds: Record<string, [number, number[]]>, snapshot: Buffer): Buffer[] {
  const meta = Buffer.from(JSON.stringify({ position, greenIds }));
  const head = Buffer.alloc(4);
  head.writeUInt32LE(meta.length, 0);
  const whole = Buffer.concat([head, meta, snapshot]);
  const viewBytes = Buffer.from(view, 'latin1');
  const count = Math.max(1, Math.ceil(whole.length / CHUNK_BYTES));
  const messages: Buffer[] = [];
  for (let index = 0; index < count; index++) {
    const chunkHead = Buffer.alloc(9);
    chunkHead.writeUInt32LE(index, 0);
    chunkHead.writeUInt32LE(count, 4);
    chunkHead.writeUInt8(viewBytes.length, 8);
    messages.push(Buffer.concat([chunkHead, viewBytes, whole.subarray(index * CHUNK_BYTES, (index + 1) * CHUNK_BYTES)]));
  }
  return messages;
}

function isPrimaryRecord(value: unknown): value is PrimaryRecord {
  const record = value as PrimaryRecord;
  return typeof record === 'object' && record !== null && Number.isSafeInteger(record.index) && Array.isArray(record.members) && record.members.every((name) => typeof name === 'string');
}

function parseCpc(data: Buffer): { view: string } {
  const cpc = JSON.parse(data.toString('utf8')) as { view: string } | null;
  if (typeof cpc !== 'object' || cpc === null || typeof cpc.view !== 'string') throw new MalformedError('malformed CPC');
  return cpc;
}

/** A member's STATE, checked field by field: a stranger's bytes must not derail the decision. */
function parseState(data: Buffer): StateMessage {
  const state = JSON.parse(data.toString('utf8')) as StateMessage;
  const valid =
    typeof state === 'object' && state !== null && typeof state.view === 'string' && typeof state.name === 'string' && Number.isSafeInteger(state.green) &&
    (state.lastPrimary === null || isPrimaryRecord(state.lastPrimary)) && Array.isArray(state.attempts) && state.attempts.every(isPrimaryRecord) &&
    (state.yellow === null || (typeof state.yellow === 'object' && Number.isSafeInteger(state.yellow.prim) && Array.isArray(state.yellow.keys)));
  if (!valid) throw new MalformedError('malformed state message');
  return state;
}
