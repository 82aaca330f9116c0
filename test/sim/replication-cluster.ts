/**
 * A seeded simulation of replication engine cores (src/apps/replication/core.ts) over a small
 * model of an EVS group: components with one total order each; a message is first held by its
 * sender only ("unstable") and later by every member ("stable"); only stable messages are
 * delivered in a regular configuration (SAFE). A partition or merge gives every member a
 * transitional signal, then the rest of the old order: stable messages and the unstable ones
 * whose sender stays with it, then the new regular view. A replica crash or restart changes the
 * view without a transitional signal, as a Spread disconnect or join does.
 *
 * Durability is exact: every effect is carried out at once, so a crash loses only the core.
 * The checks: one green order (every position holds the same action at every replica), every
 * acknowledged transfer green exactly once, and the money total constant.
 */
import { actionKey, SYSTEM_ORIGIN } from '../../src/apps/replication/action.js';
import { EngineCore, snapshotMessages, type Effect } from '../../src/apps/replication/core.js';
import { emptyCheckpoint, recover, type Checkpoint, type LogRecord } from '../../src/apps/replication/records.js';
import { Prng } from './prng.js';

export const ACCOUNTS = ['a', 'b', 'c', 'd', 'e'];
export const INITIAL_BALANCE = 100;

interface Transfer {
  id: string;
  from: string;
  to: string;
  amount: number;
}

class Bank {
  balances = new Map(ACCOUNTS.map((account) => [account, INITIAL_BALANCE]));

  apply(transfer: Transfer): void {
    const from = this.balances.get(transfer.from)!;
    if (from < transfer.amount) return;
    this.balances.set(transfer.from, from - transfer.amount);
    this.balances.set(transfer.to, this.balances.get(transfer.to)! + transfer.amount);
  }

  total(): number {
    let total = 0;
    for (const balance of this.balances.values()) total += balance;
    return total;
  }

  snapshot(): Buffer {
    return Buffer.from(JSON.stringify([...this.balances]));
  }

  restore(snapshot: Buffer): void {
    this.balances = new Map(JSON.parse(snapshot.toString()) as [string, number][]);
  }
}

interface Message {
  sender: string;
  messType: number;
  payload: Buffer;
  stable: boolean;
}

interface Component {
  key: string;
  members: Node[];
  queue: Message[];
}

class Node {
  readonly name: string;
  readonly index: number;
  core: EngineCore | null = null;
  incarnation = 0;
  bank = new Bank();
  checkpoint: Checkpoint;
  snapshot: Buffer = Buffer.alloc(0);
  records: LogRecord[] = [];
  cursor = 0;
  component: Component | null = null;
  /** Multicasts made during a reconfiguration: Spread sends them in the next view. */
  outbox: { messType: number; payload: Buffer }[] = [];
  reconfiguring = false;
  /** Daemon sessions opened by this incarnation (a lost session is replaced by a new private group). */
  session = 0;
  /** Its session is gone: it receives nothing more in the old view. */
  detached = false;

  constructor(name: string, index: number, replicas: string[]) {
    this.name = name;
    this.index = index;
    this.checkpoint = emptyCheckpoint({ index: 0, members: replicas });
  }

  get privateGroup(): string {
    return `#${this.name}.${this.incarnation}.${this.session}#d${this.index}`;
  }
}

export interface SimulationOptions {
  seed: number;
  replicas: number;
  steps: number;
  checkpointEvery: number;
}

export interface SimulationReport {
  acknowledged: number;
  greens: number;
  refused: number;
  events: string[];
}

export class ReplicationSimulation {
  readonly random: Prng;
  readonly nodes: Node[];
  readonly options: SimulationOptions;
  components: Component[] = [];
  /** Position → action key, as first applied anywhere: every later apply must agree. */
  readonly greenAt = new Map<number, string>();
  readonly acknowledged = new Set<string>();
  readonly events: string[] = [];
  #nextTransfer = 0;
  #nextView = 0;
  #refused = 0;
  #partition: number[][];

  constructor(options: SimulationOptions) {
    this.options = options;
    this.random = new Prng(options.seed);
    const names = Array.from({ length: options.replicas }, (_, index) => `r${index + 1}`);
    this.nodes = names.map((name, index) => new Node(name, index, names));
    this.#partition = [this.nodes.map((node) => node.index)];
    for (const node of this.nodes) this.#start(node);
    this.#reconfigure(this.#partition, true);
  }

  run(): SimulationReport {
    for (let step = 0; step < this.options.steps; step++) this.#step();
    this.heal();
    return { acknowledged: this.acknowledged.size, greens: this.greenAt.size, refused: this.#refused, events: this.events };
  }

  /** Restarts every replica, joins all daemons and runs until nothing moves. */
  heal(): void {
    for (const node of this.nodes) if (node.core === null) this.#restart(node);
    this.#partition = [this.nodes.map((node) => node.index)];
    this.#reconfigure(this.#partition, true);
    for (let round = 0; round < 100_000 && this.#quiesceStep(); round++);
  }

  #step(): void {
    const roll = this.random.float();
    const alive = this.nodes.filter((node) => node.core !== null);
    if (roll < 0.3 && alive.length > 0) this.#submit(this.random.pick(alive));
    else if (roll < 0.62) this.#deliverOne();
    else if (roll < 0.9) this.#stabilizeOne();
    else if (roll < 0.94) {
      const groups = this.#randomPartition();
      this.events.push(`partition ${JSON.stringify(groups)}`);
      this.#partition = groups;
      this.#reconfigure(groups, true);
    } else if (roll < 0.95 && alive.length > 0) {
      this.#loseSession(this.random.pick(alive));
    } else if (roll < 0.97 && alive.length > 0) {
      const victim = this.random.pick(alive);
      this.events.push(`crash ${victim.name}`);
      victim.core = null;
      victim.component = null;
      this.#reconfigure(this.#partition, false);
    } else {
      const dead = this.nodes.filter((node) => node.core === null);
      if (dead.length === 0) return;
      const node = this.random.pick(dead);
      this.events.push(`restart ${node.name}`);
      this.#restart(node);
      this.#reconfigure(this.#partition, false);
    }
  }

  /**
   * The replica's daemon session is lost (the process lives on) and a new one joins: its messages
   * not yet held by others are lost too when the daemon went down, kept when only the session did.
   */
  #loseSession(node: Node): void {
    const daemonDown = this.random.float() < 0.5;
    this.events.push(`session lost ${node.name}${daemonDown ? ' (daemon down)' : ''}`);
    const component = node.component;
    if (daemonDown && component !== null) {
      component.queue = component.queue.filter((message, index) => message.stable || message.sender !== node.privateGroup || index < node.cursor);
    }
    node.core!.disconnected();
    this.#run(node);
    node.detached = true;
    this.#reconfigure(this.#partition, false);
  }

  #randomPartition(): number[][] {
    const count = this.random.int(1, Math.min(3, this.nodes.length));
    const groups: number[][] = Array.from({ length: count }, () => []);
    for (const node of this.nodes) groups[this.random.int(0, count - 1)]!.push(node.index);
    return groups.filter((group) => group.length > 0);
  }

  #submit(node: Node): void {
    const from = this.random.pick(ACCOUNTS);
    let to = this.random.pick(ACCOUNTS);
    if (to === from) to = ACCOUNTS[(ACCOUNTS.indexOf(from) + 1) % ACCOUNTS.length]!;
    const transfer: Transfer = { id: `t${this.#nextTransfer++}`, from, to, amount: this.random.int(1, 40) };
    const submitted = node.core!.submit(Buffer.from(JSON.stringify(transfer)));
    if (submitted === null) {
      this.#refused++;
      return;
    }
    if (submitted.payload !== null) this.#multicast(node, 1, submitted.payload);
    this.#run(node);
  }

  #deliverOne(): boolean {
    const ready = this.components.flatMap((component) => component.members.filter((node) => component.queue[node.cursor]?.stable === true));
    if (ready.length === 0) return false;
    const node = this.random.pick(ready);
    const message = node.component!.queue[node.cursor++]!;
    node.core!.message(message.sender, message.messType, message.payload);
    this.#run(node);
    return true;
  }

  #stabilizeOne(): boolean {
    const candidates = this.components.filter((component) => component.queue.some((message) => !message.stable));
    if (candidates.length === 0) return false;
    const component = this.random.pick(candidates);
    component.queue.find((message) => !message.stable)!.stable = true;
    return true;
  }

  #quiesceStep(): boolean {
    return this.#stabilizeOne() || this.#deliverOne();
  }

  #start(node: Node): void {
    node.incarnation++;
    const durable = recover(node.checkpoint, node.records);
    node.bank = new Bank();
    if (node.checkpoint.position > 0) node.bank.restore(node.snapshot);
    for (const green of durable.greens) this.#applyGreen(node, green.position, green.origin, green.seq, green.body);
    node.core = new EngineCore(
      { name: node.name, origin: `${node.name}.${node.incarnation}`, outsidePrimary: node.index % 2 === 0 ? 'refuse' : 'queue', checkpointEvery: this.options.checkpointEvery },
      durable,
    );
    node.core.connected(node.privateGroup);
  }

  #restart(node: Node): void {
    this.#start(node);
  }

  /**
   * Moves to the views of `groups` (daemon indices) for the replicas alive now. With `transitional`,
   * members of changed components get the transitional signal and the rest of the old order first;
   * without, the old order is delivered completely in the old view (a join or leave).
   */
  #reconfigure(groups: number[][], transitional: boolean): void {
    const groupOf = new Map<number, number>();
    groups.forEach((group, index) => group.forEach((daemon) => groupOf.set(daemon, index)));
    for (const node of this.nodes) node.reconfiguring = true;
    for (const component of this.components) {
      const members = component.members.filter((node) => node.core !== null && !node.detached);
      for (const node of members) {
        const stays = new Set(members.filter((other) => groupOf.get(other.index) === groupOf.get(node.index)).map((other) => other.privateGroup));
        if (transitional) node.core!.transitional();
        this.#run(node);
        for (; node.cursor < component.queue.length; node.cursor++) {
          const message = component.queue[node.cursor]!;
          if (!transitional || message.stable || stays.has(message.sender)) {
            node.core!.message(message.sender, message.messType, message.payload);
            this.#run(node);
          }
        }
      }
    }
    this.components = [];
    groups.forEach((group) => {
      const members = group.map((index) => this.nodes[index]!).filter((node) => node.core !== null);
      if (members.length === 0) return;
      const component: Component = { key: `v${++this.#nextView}`, members, queue: [] };
      this.components.push(component);
      for (const node of members) {
        if (node.detached) {
          node.detached = false;
          node.session++;
          node.core!.connected(node.privateGroup);
        }
        node.component = component;
        node.cursor = 0;
      }
    });
    for (const component of this.components) {
      for (const node of component.members) {
        node.reconfiguring = false;
        node.core!.view(component.key, component.members.map((member) => member.privateGroup));
        const held = node.outbox;
        node.outbox = [];
        for (const message of held) this.#multicast(node, message.messType, message.payload);
        this.#run(node);
      }
    }
    for (const node of this.nodes) node.reconfiguring = false;
  }

  #multicast(node: Node, messType: number, payload: Buffer): void {
    if (node.reconfiguring) node.outbox.push({ messType, payload });
    else node.component?.queue.push({ sender: node.privateGroup, messType, payload, stable: false });
  }

  /** Carries out a core's effects at once (the sim's log is durable as soon as written). */
  #run(node: Node): void {
    const core = node.core;
    if (core === null) return;
    for (const effect of core.takeEffects()) this.#perform(node, core, effect);
  }

  #perform(node: Node, core: EngineCore, effect: Effect): void {
    switch (effect.kind) {
      case 'log':
        node.records.push(effect.record);
        break;
      case 'multicast':
        this.#multicast(node, effect.messType, effect.payload);
        break;
      case 'apply': {
        const { position, origin, seq, body } = effect.action;
        this.#applyGreen(node, position, origin, seq, body);
        if (origin === core.origin) this.acknowledged.add(transferId(body));
        break;
      }
      case 'checkpoint':
        node.checkpoint = effect.checkpoint;
        node.snapshot = node.bank.snapshot();
        node.records = [];
        break;
      case 'restore':
        node.bank.restore(effect.snapshot);
        node.checkpoint = effect.checkpoint;
        node.snapshot = effect.snapshot;
        node.records = [];
        break;
      case 'send-snapshot':
        for (const message of snapshotMessages(effect.view, effect.position, effect.greenIds, node.bank.snapshot())) this.#multicast(node, 5, message);
        break;
    }
  }

  #applyGreen(node: Node, position: number, origin: string, seq: number, body: Buffer): void {
    const key = origin === SYSTEM_ORIGIN ? actionKey({ origin, seq }) : transferId(body);
    const known = this.greenAt.get(position);
    if (known === undefined) this.greenAt.set(position, key);
    else if (known !== key) throw new Error(`${node.name} applied ${key} at ${position}, another replica ${known}`);
    if (origin !== SYSTEM_ORIGIN) node.bank.apply(JSON.parse(body.toString()) as Transfer);
    const total = node.bank.total();
    if (total !== ACCOUNTS.length * INITIAL_BALANCE) throw new Error(`${node.name}: total ${total} at ${position}`);
  }

  /** After heal(): the failures of the convergence and exactly-once checks (empty when all hold). */
  check(): string[] {
    const problems: string[] = [];
    const first = this.nodes[0]!;
    for (const node of this.nodes) {
      if (!node.core!.primary) problems.push(`${node.name} is not in a primary after heal (phase ${node.core!.phase})`);
      if (node.core!.lastGreen !== first.core!.lastGreen) problems.push(`${node.name} at green ${node.core!.lastGreen}, ${first.name} at ${first.core!.lastGreen}`);
      if (JSON.stringify([...node.bank.balances]) !== JSON.stringify([...first.bank.balances])) problems.push(`${node.name} balances differ`);
      if (node.core!.redCount !== 0) problems.push(`${node.name} still holds ${node.core!.redCount} red actions`);
    }
    const seen = new Map<string, number>();
    for (let position = 1; position <= first.core!.lastGreen; position++) {
      const key = this.greenAt.get(position);
      if (key === undefined) problems.push(`no green action known at ${position}`);
      else seen.set(key, (seen.get(key) ?? 0) + 1);
    }
    for (const [key, count] of seen) if (count > 1) problems.push(`${key} green ${count} times`);
    for (const id of this.acknowledged) if (seen.get(id) !== 1) problems.push(`acknowledged ${id} green ${seen.get(id) ?? 0} times`);
    return problems;
  }
}

const transferId = (body: Buffer): string => (JSON.parse(body.toString()) as Transfer).id;
