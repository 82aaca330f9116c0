/**
 * A tiny reference model of Spread's client-visible behaviour, used to
 * produce logs that are correct by construction (property tests of the
 * checker). It is NOT a daemon: every event happens at one instant, and each
 * network component delivers it identically to all its addressed clients, so
 * the model is one global sequence of events.
 *
 * What it does follow from spread-protocol.md §5.2–§5.5 and §7.3: join and
 * leave give REG+JOIN / self-leave + REG+LEAVE with index + 1; a group that
 * empties is discarded and a later join recreates it with index 1; a
 * partition or crash gives, to groups that lost members, a TRANSITION (old
 * gid) then a REG+NETWORK (new membership id, index 1) with one vs set; a
 * merge gives REG+NETWORK with no TRANSITION and one vs set per component
 * the members came from. A "late" send models a message still in flight at
 * the next configuration change: it is then delivered as a clean-up message,
 * after the transitional signals and only on its sender's side.
 */

import type { ClientLog, Service } from './log.js';
import { ClientLogCollection, type ClientLogRecorder } from './log.js';

export type ModelOp =
  | { op: 'join'; client: number; group: number }
  | { op: 'leave'; client: number; group: number }
  | {
      op: 'send';
      client: number;
      service: Service;
      /** Public group numbers; `privateTo` adds clients' private groups. */
      groups: number[];
      privateTo: number[];
      selfDiscard: boolean;
      late: boolean;
    }
  /**
   * Splits every component holding some of `daemons` in two. With
   * `joinDuring`, that client joins that group during the transitional
   * period if the group changed on the client's side (spread-protocol.md
   * §5.5 "join while changed": REG+NETWORK then TRANSITION, same gid).
   */
  | { op: 'partition'; daemons: number[]; joinDuring?: { client: number; group: number } }
  | { op: 'merge' }
  | { op: 'crash'; daemon: number }
  | { op: 'restart'; daemon: number };

export interface ModelConfig {
  daemons: number;
  /** Client i lives on daemon i % daemons. */
  clients: number;
  groups: number;
}

interface ClientState {
  recorder: ClientLogRecorder;
  daemon: number;
  name: string;
}

interface GroupView {
  procId: number;
  time: number;
  index: number;
  /** Client numbers. */
  members: number[];
}

interface Component {
  daemons: Set<number>;
  procId: number;
  time: number;
  /** Group number -> view. */
  groups: Map<number, GroupView>;
}

interface PendingMessage {
  id: string;
  client: number;
  service: Service;
  groups: number[];
  privateTo: number[];
  names: string[];
  selfDiscard: boolean;
}

export function groupName(group: number): string {
  return `g${group}`;
}

export function clientName(client: number, daemon: number): string {
  return `#c${client}#d${daemon}`;
}

/** Runs the ops, then heals (restarts nothing, merges everything). Returns the logs. */
export function runReferenceModel(config: ModelConfig, ops: readonly ModelOp[]): ClientLog[] {
  const model = new ReferenceModel(config);
  for (const op of ops) model.apply(op);
  model.apply({ op: 'merge' });
  return model.logs();
}

class ReferenceModel {
  private readonly collection = new ClientLogCollection();
  private readonly clients: (ClientState | undefined)[] = [];
  private components: Component[] = [];
  private readonly alive = new Set<number>();
  private clock = 0;
  private pending: PendingMessage[] = [];

  constructor(private readonly config: ModelConfig) {
    const all = new Set<number>();
    for (let daemon = 0; daemon < config.daemons; daemon++) {
      all.add(daemon);
      this.alive.add(daemon);
    }
    this.components.push(this.newComponent(all));
    for (let client = 0; client < config.clients; client++) this.connect(client);
  }

  logs(): ClientLog[] {
    return this.collection.logs();
  }

  apply(op: ModelOp): void {
    if (op.op === 'partition' || op.op === 'crash') {
      this.changeConfiguration(op);
      return;
    }
    this.flush();
    switch (op.op) {
      case 'join':
        this.join(op.client, op.group);
        break;
      case 'leave':
        this.leave(op.client, op.group);
        break;
      case 'send':
        this.send(op);
        break;
      case 'merge':
        this.merge();
        break;
      case 'restart':
        this.restart(op.daemon);
        break;
    }
  }

  private newComponent(daemons: Set<number>): Component {
    this.clock += 1;
    return { daemons, procId: Math.min(...daemons) + 1, time: this.clock, groups: new Map() };
  }

  private connect(client: number): void {
    const daemon = client % this.config.daemons;
    const name = clientName(client, daemon);
    this.clients[client] = { recorder: this.collection.open({ privateGroup: name, daemon: `d${daemon}` }), daemon, name };
  }

  private componentOf(daemon: number): Component | undefined {
    return this.components.find((component) => component.daemons.has(daemon));
  }

  private sortMembers(members: number[]): number[] {
    // Daemon order, then name order (spread-protocol.md §5.3).
    return [...members].sort((a, b) => {
      const da = a % this.config.daemons;
      const db = b % this.config.daemons;
      if (da !== db) return da - db;
      const na = this.name(a);
      const nb = this.name(b);
      return na < nb ? -1 : na > nb ? 1 : 0;
    });
  }

  private name(client: number): string {
    return (this.clients[client] as ClientState).name;
  }

  private recorder(client: number): ClientLogRecorder {
    return (this.clients[client] as ClientState).recorder;
  }

  private connected(client: number): boolean {
    const state = this.clients[client];
    return state !== undefined && !state.recorder.isDisconnected;
  }

  private installRegular(group: number, view: GroupView, to: number[], cause: 'join' | 'leave' | 'network', vsSetOf: (client: number) => number[]): void {
    const members = view.members.map((member) => this.name(member));
    for (const client of to) {
      this.recorder(client).membership({
        kind: 'regular',
        group: groupName(group),
        cause,
        gid: { procId: view.procId, time: view.time, index: view.index },
        members,
        vsSet: vsSetOf(client).map((member) => this.name(member)),
      });
    }
  }

  private join(client: number, group: number): void {
    if (!this.connected(client)) return;
    const component = this.componentOf(this.clients[client]?.daemon as number) as Component;
    this.recorder(client).joinRequested(groupName(group));
    const current = component.groups.get(group);
    if (current?.members.includes(client)) return;
    const view: GroupView =
      current === undefined
        ? { procId: component.procId, time: component.time, index: 1, members: [client] }
        : { ...current, index: current.index + 1, members: this.sortMembers([...current.members, client]) };
    component.groups.set(group, view);
    this.installRegular(group, view, view.members, 'join', () => [client]);
  }

  private leave(client: number, group: number): void {
    if (!this.connected(client)) return;
    const component = this.componentOf(this.clients[client]?.daemon as number) as Component;
    this.recorder(client).leaveRequested(groupName(group));
    const current = component.groups.get(group);
    if (current === undefined || !current.members.includes(client)) return;
    this.recorder(client).membership({ kind: 'self-leave', group: groupName(group) });
    const members = current.members.filter((member) => member !== client);
    if (members.length === 0) {
      component.groups.delete(group);
      return;
    }
    const view: GroupView = { ...current, index: current.index + 1, members };
    component.groups.set(group, view);
    this.installRegular(group, view, members, 'leave', () => [client]);
  }

  private send(op: Extract<ModelOp, { op: 'send' }>): void {
    if (!this.connected(op.client)) return;
    const names = [...new Set([...op.groups.map(groupName), ...op.privateTo.filter((to) => this.clients[to] !== undefined).map((to) => this.name(to))])];
    if (names.length === 0) return;
    const id = this.recorder(op.client).sent({ service: op.service, groups: names, selfDiscard: op.selfDiscard });
    const message: PendingMessage = { id, client: op.client, service: op.service, groups: op.groups, privateTo: op.privateTo, names, selfDiscard: op.selfDiscard };
    if (op.late) {
      this.pending.push(message);
      return;
    }
    this.deliver(message, this.recipients(message, undefined));
  }

  /** Recipients in the sender's component, optionally restricted to some daemons. */
  private recipients(message: PendingMessage, onDaemons: Set<number> | undefined): number[] {
    const senderDaemon = (this.clients[message.client] as ClientState).daemon;
    const component = this.componentOf(senderDaemon) as Component;
    const targets = new Set<number>();
    for (const group of message.groups) {
      for (const member of component.groups.get(group)?.members ?? []) targets.add(member);
    }
    for (const to of message.privateTo) {
      if (this.connected(to) && component.daemons.has((this.clients[to] as ClientState).daemon)) targets.add(to);
    }
    if (message.selfDiscard) targets.delete(message.client);
    return [...targets].filter((client) => onDaemons === undefined || onDaemons.has((this.clients[client] as ClientState).daemon)).sort((a, b) => a - b);
  }

  private deliver(message: PendingMessage, to: number[]): void {
    for (const client of to) {
      this.recorder(client).delivered({ id: message.id, sender: this.name(message.client), service: message.service, groups: message.names });
    }
  }

  private flush(): void {
    const pending = this.pending;
    this.pending = [];
    for (const message of pending) {
      if (this.connected(message.client)) this.deliver(message, this.recipients(message, undefined));
    }
  }

  /** Partition or crash: the affected components shrink; survivors see TRANSITION, clean-up, REG+NETWORK. */
  private changeConfiguration(op: Extract<ModelOp, { op: 'partition' } | { op: 'crash' }>): void {
    const moving = new Set(op.op === 'partition' ? op.daemons.filter((daemon) => this.alive.has(daemon)) : [op.daemon].filter((daemon) => this.alive.has(daemon)));
    if (moving.size === 0) {
      this.flush();
      return;
    }
    const nextComponents: Component[] = [];
    const splits: { old: Component; parts: Set<number>[] }[] = [];
    for (const component of this.components) {
      const inside = new Set([...component.daemons].filter((daemon) => moving.has(daemon)));
      const outside = new Set([...component.daemons].filter((daemon) => !moving.has(daemon)));
      if (inside.size === 0) {
        nextComponents.push(component);
        continue;
      }
      const parts = op.op === 'partition' ? [inside, outside] : [outside];
      splits.push({ old: component, parts: parts.filter((part) => part.size > 0) });
    }
    // Crashed daemons: their clients disconnect, their late messages are lost.
    if (op.op === 'crash') {
      this.alive.delete(op.daemon);
      this.clients.forEach((state, client) => {
        if (state !== undefined && state.daemon === op.daemon && this.connected(client)) state.recorder.closed('daemon crashed');
      });
    }
    const pending = this.pending;
    this.pending = [];
    const created: Component[] = [];
    for (const { old, parts } of splits) {
      for (const part of parts) {
        const component = this.newComponent(part);
        const changed: { group: number; members: number[] }[] = [];
        for (const [group, view] of old.groups) {
          const members = view.members.filter((member) => part.has(member % this.config.daemons) && this.connected(member));
          if (members.length === 0) continue;
          if (members.length === view.members.length) {
            component.groups.set(group, view);
            continue;
          }
          for (const member of members) {
            this.recorder(member).membership({ kind: 'transitional', group: groupName(group), gid: { procId: view.procId, time: view.time, index: view.index } });
          }
          changed.push({ group, members });
        }
        // Clean-up: late messages of senders on this side, to this side only,
        // addressed by the old views (the old component's group state).
        for (const message of pending) {
          const senderDaemon = (this.clients[message.client] as ClientState).daemon;
          if (!part.has(senderDaemon) || !this.connected(message.client)) continue;
          const targets = new Set<number>();
          for (const group of message.groups) {
            for (const member of old.groups.get(group)?.members ?? []) {
              if (part.has(member % this.config.daemons) && this.connected(member)) targets.add(member);
            }
          }
          for (const to of message.privateTo) {
            if (this.connected(to) && part.has((this.clients[to] as ClientState).daemon)) targets.add(to);
          }
          if (message.selfDiscard) targets.delete(message.client);
          this.deliver(message, [...targets].sort((a, b) => a - b));
        }
        if (op.op === 'partition' && op.joinDuring !== undefined) {
          this.joinWhileChanged(op.joinDuring, part, old, changed);
        }
        for (const { group, members } of changed) {
          const view: GroupView = { procId: component.procId, time: component.time, index: 1, members };
          component.groups.set(group, view);
          this.installRegular(group, view, members, 'network', () => members);
        }
        created.push(component);
      }
    }
    // Late messages from components that did not change are flushed normally.
    for (const message of pending) {
      const senderDaemon = (this.clients[message.client] as ClientState).daemon;
      if (nextComponents.some((component) => component.daemons.has(senderDaemon)) && this.connected(message.client)) {
        this.deliver(message, this.recipients(message, undefined));
      }
    }
    this.components = [...nextComponents, ...created];
  }

  /**
   * The joiner's REG+NETWORK lists the old members including those on
   * departed daemons (each departed daemon its own vs set), the side's
   * members in one set and the joiner alone at the end; a TRANSITION with
   * the same gid follows. The gid is (transitional membership id, 2).
   */
  private joinWhileChanged(
    join: { client: number; group: number },
    part: Set<number>,
    old: Component,
    changed: { group: number; members: number[] }[],
  ): void {
    const state = this.clients[join.client];
    if (state === undefined || !this.connected(join.client) || !part.has(state.daemon)) return;
    const entry = changed.find((candidate) => candidate.group === join.group);
    const before = old.groups.get(join.group);
    if (entry === undefined || before === undefined || entry.members.includes(join.client)) return;
    this.recorder(join.client).joinRequested(groupName(join.group));
    this.clock += 1;
    const view: GroupView = {
      procId: Math.min(...part) + 1,
      time: this.clock,
      index: 2,
      members: this.sortMembers([...before.members.filter((member) => this.connected(member) || !part.has(member % this.config.daemons)), join.client]),
    };
    const side = entry.members;
    const departedSet = (client: number): number[] => before.members.filter((member) => member % this.config.daemons === client % this.config.daemons);
    const to = [...side, join.client];
    this.installRegular(join.group, view, to, 'network', (client) => (client === join.client ? [client] : side.includes(client) ? side : departedSet(client)));
    for (const client of to) {
      this.recorder(client).membership({ kind: 'transitional', group: groupName(join.group), gid: { procId: view.procId, time: view.time, index: view.index } });
    }
    entry.members = this.sortMembers(to);
  }

  private merge(): void {
    if (this.components.length < 2) return;
    const old = this.components;
    const merged = this.newComponent(new Set(old.flatMap((component) => [...component.daemons])));
    const groups = new Set(old.flatMap((component) => [...component.groups.keys()]));
    for (const group of [...groups].sort((a, b) => a - b)) {
      const sides = old.filter((component) => component.groups.has(group));
      if (sides.length === 1) {
        merged.groups.set(group, sides[0].groups.get(group) as GroupView);
        continue;
      }
      const members = this.sortMembers(sides.flatMap((component) => (component.groups.get(group) as GroupView).members));
      const view: GroupView = { procId: merged.procId, time: merged.time, index: 1, members };
      merged.groups.set(group, view);
      const sideOf = (client: number): number[] => {
        const side = sides.find((component) => component.daemons.has(client % this.config.daemons)) as Component;
        return (side.groups.get(group) as GroupView).members;
      };
      this.installRegular(group, view, members, 'network', sideOf);
    }
    this.components = [merged];
  }

  private restart(daemon: number): void {
    if (this.alive.has(daemon)) return;
    this.alive.add(daemon);
    this.components.push(this.newComponent(new Set([daemon])));
    for (let client = 0; client < this.config.clients; client++) {
      if (client % this.config.daemons === daemon) this.connect(client);
    }
  }
}
