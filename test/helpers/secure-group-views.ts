/**
 * A seeded EVS view schedule for driving secure-group key agreement without
 * daemons: members live in components (one per network partition); every join,
 * leave, crash, partition and merge gives each affected component a new regular
 * view with a fresh group id; each component has one total order (a log) that its
 * members read at their own pace. Messages still in flight at a view change are
 * delivered to the survivors before the view, dropped, or delivered after it (as
 * Spread may deliver a message sent just before a join or leave), at random.
 * Silent members (plain Spread clients) take view places but send nothing.
 *
 * The simulator's clients (test/sim/cluster.ts) only send the checker's fixed
 * payloads, so the key agreement runs here on views drawn from the same Prng.
 */
import { createPrivateKey, type KeyObject } from 'node:crypto';
import {
  KeyAgreement,
  viewTagOf,
  type AgreementOutput,
  type EstablishedKey,
  type ViewInput,
} from '../../src/apps/secure-group/index.js';
import { Prng } from '../sim/prng.js';

const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

/** An Ed25519 private key from 32 seed bytes (deterministic identities). */
export function ed25519FromSeed(seed: Uint8Array): KeyObject {
  return createPrivateKey({ key: Buffer.concat([ED25519_PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' });
}

interface Member {
  id: string;
  person: number;
  /** null for a silent member. */
  agreement: KeyAgreement | null;
  trusted: boolean;
  component: number;
  cursor: number;
  keys: Map<string, EstablishedKey>;
  excludedFrom: Set<string>;
}

interface Component {
  id: number;
  members: string[];
  log: { sender: string; bytes: Buffer }[];
  view: ViewInput;
}

export interface ScheduleOptions {
  seed: number;
  persons: number;
  actions: number;
  /** Persons with an identity outside the trust list. */
  untrusted: number;
  /** Persons that join as silent Spread clients. */
  silent: number;
}

export type Action = 'join' | 'leave' | 'crash' | 'partition' | 'merge';

export class ViewSchedule {
  readonly prng: Prng;
  readonly members = new Map<string, Member>();
  readonly components = new Map<number, Component>();
  /** Every key any member established, by view tag. */
  readonly established = new Map<string, { key: EstablishedKey; holders: Set<string> }>();
  /** Members of every view ever installed, by view tag. */
  readonly viewMembers = new Map<string, string[]>();
  readonly rejected = new Map<string, number>();
  readonly actionsDone = new Map<Action, number>();
  views = 0;
  #nextComponent = 1;
  #time = 1;
  #incarnation = 0;
  readonly #identities: KeyObject[] = [];
  readonly #trust = new Map<string, KeyObject>();
  readonly #options: ScheduleOptions;

  constructor(options: ScheduleOptions) {
    this.#options = options;
    this.prng = new Prng(options.seed);
    for (let person = 0; person < options.persons; person++) {
      const seed = new Uint8Array(32);
      this.prng.fill(seed);
      const key = ed25519FromSeed(seed);
      this.#identities.push(key);
      if (person >= options.untrusted) this.#trust.set(`person${person}`, key);
    }
  }

  online(): Member[] {
    return [...this.members.values()];
  }

  /** One random action that is possible now; returns what was done. */
  act(): Action | null {
    const choices: Action[] = [];
    const offline = this.#offlinePersons();
    if (offline.length > 0) choices.push('join', 'join');
    if (this.members.size > 0) choices.push('leave', 'crash');
    if ([...this.components.values()].some((component) => component.members.length >= 2)) choices.push('partition');
    if (this.components.size >= 2) choices.push('merge', 'merge');
    if (choices.length === 0) return null;
    const action = this.prng.pick(choices);
    if (action === 'join') this.#join(this.prng.pick(offline));
    else if (action === 'leave' || action === 'crash') this.#remove(this.prng.pick(this.online()).id, action === 'crash');
    else if (action === 'partition') this.#partition();
    else this.#merge();
    this.actionsDone.set(action, (this.actionsDone.get(action) ?? 0) + 1);
    return action;
  }

  /** Delivers up to `steps` messages, one member's next at a time; true when nothing is left to deliver. */
  deliver(steps: number): boolean {
    for (let step = 0; step < steps; step++) {
      const behind = this.online().filter((member) => member.cursor < this.components.get(member.component)!.log.length);
      if (behind.length === 0) return true;
      this.#deliverNext(this.prng.pick(behind));
    }
    return this.online().every((member) => member.cursor >= this.components.get(member.component)!.log.length);
  }

  /** Fires the roster deadline at one random member (early: some leaves may not be in yet). */
  deadlineAtRandom(): void {
    const speaking = this.online().filter((member) => member.agreement !== null);
    if (speaking.length === 0) return;
    const member = this.prng.pick(speaking);
    this.#output(member, member.agreement!.rosterDeadline());
  }

  /** Delivers everything, firing roster deadlines whenever the logs run dry, until no member is pending. */
  settle(): void {
    for (let round = 0; round < 100; round++) {
      this.deliver(Number.MAX_SAFE_INTEGER);
      const pending = this.online().filter((member) => member.agreement?.pending);
      if (pending.length === 0) return;
      for (const member of pending) this.#output(member, member.agreement!.rosterDeadline());
    }
    throw new Error('key agreement did not settle in 100 deadline rounds');
  }

  #offlinePersons(): number[] {
    const present = new Set(this.online().map((member) => member.person));
    const total = this.#options.persons + this.#options.silent;
    return Array.from({ length: total }, (_, person) => person).filter((person) => !present.has(person));
  }

  #join(person: number): void {
    const id = `#p${person}i${this.#incarnation++}#sim`;
    const silent = person >= this.#options.persons;
    const agreement = silent
      ? null
      : new KeyAgreement(id, { name: `person${person}`, privateKey: this.#identities[person] }, this.#trust);
    const components = [...this.components.values()];
    const component =
      components.length > 0 && this.prng.chance(0.8) ? this.prng.pick(components) : this.#newComponent([]);
    const member: Member = {
      id,
      person,
      agreement,
      trusted: !silent && person >= this.#options.untrusted,
      component: component.id,
      cursor: component.log.length,
      keys: new Map(),
      excludedFrom: new Set(),
    };
    this.members.set(id, member);
    this.#install(component, [...component.members, id]);
  }

  #remove(id: string, crash: boolean): void {
    const member = this.members.get(id)!;
    const component = this.components.get(member.component)!;
    this.members.delete(id);
    // A crashed member's queued messages vanish with it; a leaver's were sent before it left.
    if (crash) component.log = component.log.map((entry) => (entry.sender === id ? { sender: id, bytes: Buffer.alloc(0) } : entry));
    const rest = component.members.filter((other) => other !== id);
    if (rest.length === 0) this.components.delete(component.id);
    else this.#install(component, rest);
  }

  #partition(): void {
    const splittable = [...this.components.values()].filter((component) => component.members.length >= 2);
    const component = this.prng.pick(splittable);
    const shuffled = [...component.members].sort(() => this.prng.float() - 0.5);
    const cut = this.prng.int(1, shuffled.length - 1);
    const away = new Set(shuffled.slice(cut));
    const fresh = this.#newComponent([]);
    for (const id of away) {
      const member = this.members.get(id)!;
      member.component = fresh.id;
      member.cursor = 0;
    }
    this.#install(fresh, component.members.filter((id) => away.has(id)));
    this.#install(component, component.members.filter((id) => !away.has(id)));
  }

  #merge(): void {
    const [first, second] = [...this.components.values()].sort(() => this.prng.float() - 0.5);
    this.components.delete(second.id);
    for (const id of second.members) {
      const member = this.members.get(id)!;
      member.component = first.id;
      member.cursor = first.log.length;
    }
    this.#install(first, [...first.members, ...second.members]);
  }

  #newComponent(members: string[]): Component {
    const id = this.#nextComponent++;
    const component: Component = { id, members, log: [], view: { group: 'secure', gid: { procId: id, time: 0, index: 0 }, members } };
    this.components.set(id, component);
    return component;
  }

  /** A new regular view for `component`, after settling what was in flight. */
  #install(component: Component, members: string[]): void {
    const fate = this.prng.pick(['deliver-before', 'drop', 'deliver-after'] as const);
    const stragglers = component.log.filter((_, index) => this.#anyBehind(component, index));
    if (fate === 'deliver-before') {
      for (const id of members) {
        const member = this.members.get(id);
        if (member === undefined || member.component !== component.id) continue;
        while (member.cursor < component.log.length) this.#deliverNext(member);
      }
    }
    component.members = members.sort();
    component.log = fate === 'deliver-after' ? stragglers.map((entry) => ({ ...entry })) : [];
    component.view = {
      group: 'secure',
      gid: { procId: component.id, time: this.#time++, index: 1 },
      members: [...component.members],
    };
    this.views += 1;
    this.viewMembers.set(viewTagOf(component.view), [...component.members]);
    for (const id of component.members) {
      const member = this.members.get(id)!;
      member.component = component.id;
      member.cursor = 0;
      if (member.agreement === null) continue;
      const leafSecret = new Uint8Array(32);
      this.prng.fill(leafSecret);
      this.#output(member, member.agreement.startView(component.view, leafSecret));
    }
  }

  #anyBehind(component: Component, index: number): boolean {
    return component.members.some((id) => {
      const member = this.members.get(id);
      return member !== undefined && member.component === component.id && member.cursor <= index;
    });
  }

  #deliverNext(member: Member): void {
    const component = this.components.get(member.component)!;
    const entry = component.log[member.cursor++];
    if (member.agreement === null || entry.bytes.length === 0) return;
    this.#output(member, member.agreement.receive(entry.sender, entry.bytes));
  }

  #output(member: Member, output: AgreementOutput): void {
    for (const reason of output.rejected) this.rejected.set(reason, (this.rejected.get(reason) ?? 0) + 1);
    const component = this.components.get(member.component)!;
    for (const bytes of output.send) component.log.push({ sender: member.id, bytes });
    if (output.excluded) member.excludedFrom.add(member.agreement!.viewTag!);
    const key = output.established;
    if (key === null) return;
    member.keys.set(key.viewTag, key);
    const record = this.established.get(key.viewTag) ?? { key, holders: new Set<string>() };
    record.holders.add(member.id);
    if (!record.key.key.equals(key.key)) throw new Error(`two keys for view ${key.viewTag}: ${record.key.fingerprint} and ${key.fingerprint}`);
    this.established.set(key.viewTag, record);
  }

  /** The tag of a component's current view. */
  tagOf(component: Component): string {
    return viewTagOf(component.view);
  }
}
