/**
 * Whole-daemon deterministic simulator: N DaemonNodes (sessions + ring + group layer)
 * in one process on a simulated clock, with simulated clients that speak the client
 * protocol byte for byte (connect request, auth choice, requests framed as a client
 * library would) and record what they see for the EVS checker. One seed drives the whole
 * run: the workload, the chaos (crashes, restarts, partitions, merges, loss) and every
 * delay, so a failing seed replays exactly.
 *
 * Rings come from a `RingFabric`: the EVS model (cluster-evs-ring.ts) until TotemRing
 * forms partial rings and merges; then TotemRing over the datagram simulator.
 *
 * Client input follows the daemon adapter's rules: bytes a client writes while its
 * daemon says `inputThrottled()` (ring back-pressure, or the group-state exchange) wait
 * in the client's socket and reach the daemon once it reads again.
 */
import { ClientLogCollection, type ClientLogRecorder, payloadWithId } from '../../src/checker/index.js';
import { decodeMessage, SERVICE_BITS, type Service } from '../../src/client/messages.js';
import type { SpreadConfig } from '../../src/config/types.js';
import { DaemonNode } from '../../src/daemon/node.js';
import {
  encodeAuthChoice,
  encodeConnectRequest,
  encodeControlRequest,
  encodeHint,
  encodeMessage,
  Framer,
  ServiceType,
} from '../../src/protocol/index.js';
import type { OutboundPacket, Ring } from '../../src/ring/types.js';
import { TotemFabric, type TotemFabricOptions } from './cluster-totem.js';
import { ringTestConfig } from './config.js';
import { EvsFabric, type FabricOptions, type Scheduler } from './cluster-evs-ring.js';
import { Prng } from './prng.js';

/**
 * Timed actions, ties in insertion order: an array sorted latest first, so the next
 * action pops off the end (a few thousand pending at most; insertion is a binary search).
 */
class ActionQueue implements Scheduler {
  nowMs = 0;
  private items: { at: number; order: number; run: () => void }[] = [];
  private order = 0;

  get size(): number {
    return this.items.length;
  }

  at(timeMs: number, run: () => void): void {
    const item = { at: Math.max(timeMs, this.nowMs), order: this.order++, run };
    // Every item is earlier in line than the new one, unless it is due later.
    let low = 0;
    let high = this.items.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.items[middle].at > item.at) low = middle + 1;
      else high = middle;
    }
    this.items.splice(low, 0, item);
  }

  peekAt(): number | null {
    return this.items.length > 0 ? this.items[this.items.length - 1].at : null;
  }

  pop(): { at: number; run: () => void } | undefined {
    return this.items.pop();
  }
}

/** Where rings come from (the EVS model, or TotemRing over simulated datagrams). */
export interface RingFabric {
  start(vid: number, nowMs: number): Ring;
  crash(vid: number): void;
  setIslands(islands: Map<number, number>): void;
  heal(): void;
  /** Rings match the islands and hold nothing undelivered. */
  settled(): boolean;
  /** Datagrams a node handed out (ignored by the model). */
  send(from: number, packets: OutboundPacket[]): void;
  describe(): string;
}

class ModelFabric implements RingFabric {
  private readonly fabric: EvsFabric;
  /** Called after a ring queued events, so the simulator pumps its node. */
  onRingEvents: ((vid: number) => void) | null = null;

  constructor(
    vids: number[],
    scheduler: Scheduler,
    prng: Prng,
    private readonly options: FabricOptions,
  ) {
    this.fabric = new EvsFabric(vids, scheduler, prng, options);
  }

  start(vid: number): Ring {
    const ring = this.fabric.start(vid);
    ring.onEvents = () => this.onRingEvents?.(vid);
    return ring;
  }
  crash(vid: number): void {
    this.fabric.crash(vid);
  }
  setIslands(islands: Map<number, number>): void {
    this.fabric.setIslands(islands);
  }
  heal(): void {
    this.fabric.heal();
  }
  settled(): boolean {
    return this.fabric.settled();
  }
  send(): void {}
  describe(): string {
    const o = this.options;
    return `evs-model loss=${o.loss} delay=${o.delayMs.join('..')}ms reconfigure=${o.reconfigureMs.join('..')}ms queue=${o.queueMax}`;
  }
}

export interface ClusterScenario {
  seed: number;
  daemons: number;
  clientsPerDaemon: number;
  groups: number;
  /** Client actions during the chaos phase. */
  actions: number;
  /** Chaos events (crash, restart, partition, heal) during the chaos phase. */
  chaos: number;
  chaosPhaseMs: number;
  /**
   * How long a crashed daemon stays down during the chaos phase. With TotemRing it also
   * stays down until the clock passed the ring times of its previous life (see crashDaemon).
   */
  downMs: [number, number];
  /** 'model': the EVS ring model (cluster-evs-ring.ts); 'totem': TotemRing over simulated datagrams. */
  ring: 'model' | 'totem';
  fabric: FabricOptions;
  totem: TotemFabricOptions;
}

export function drawClusterScenario(seed: number, overrides: Partial<ClusterScenario> = {}): ClusterScenario {
  const r = new Prng(seed ^ 0x0c1a57e2);
  const ring = overrides.ring ?? 'model';
  const t = new Prng(seed ^ 0x70736e);
  const personalWindow = t.pick([5, 20]);
  const accelerated = t.chance(0.5);
  return {
    seed,
    daemons: r.int(3, 5),
    clientsPerDaemon: r.int(1, 3),
    groups: r.int(1, 4),
    actions: r.int(40, 160),
    chaos: r.int(1, 8),
    chaosPhaseMs: ring === 'model' ? r.pick([100, 300, 1000]) : t.pick([1500, 3000, 6000]),
    downMs: ring === 'model' ? [0, 80] : [1001, 2500],
    ring,
    fabric: {
      loss: r.pick([0, 0.02, 0.1, 0.3]),
      delayMs: r.pick([
        [0.05, 0.3],
        [0.1, 2],
        [0.5, 5],
      ] as [number, number][]),
      reconfigureMs: r.pick([
        [0.5, 3],
        [2, 20],
        [10, 60],
      ] as [number, number][]),
      perRotation: r.pick([1, 5, 50]),
      queueMax: r.pick([3, 50, 1000]),
    },
    totem: {
      loss: t.pick([0, 0, 0.01, 0.05]),
      duplicate: t.pick([0, 0.02]),
      delayMs: t.pick([0.05, 0.2, 1]),
      jitterMs: t.pick([0, 0.1, 2]),
      ring: {
        acceleratedRing: accelerated,
        acceleratedWindow: accelerated ? Math.min(personalWindow, 3) : undefined,
        personalWindow,
        window: t.pick([personalWindow * 2, 160]),
        datagramBytes: t.pick([1472, 600, 32768]),
        sendQueueMessagesMax: t.pick([8, 1000]),
        tokenRetransmitMs: t.pick([20, 50]),
      },
    },
    ...overrides,
  };
}

export function describeScenario(s: ClusterScenario): string {
  return (
    `daemons=${s.daemons} clients=${s.daemons}x${s.clientsPerDaemon} groups=${s.groups} actions=${s.actions} chaos=${s.chaos} ` +
    `phase=${s.chaosPhaseMs}ms`
  );
}

const SERVICES: Service[] = ['unreliable', 'reliable', 'fifo', 'causal', 'agreed', 'safe'];

interface SimClient {
  /** Private name, e.g. `c3`; the same across reconnects. */
  name: string;
  daemon: number;
  session: number | null;
  privateGroup: string;
  recorder: ClientLogRecorder | null;
  /** Handshake reply bytes still to skip: null once open. */
  handshake: Buffer | null;
  framer: Framer | null;
  socket: SimSocket | null;
  /** Groups this session asked to join and not to leave. */
  wanted: Set<string>;
}

/** A client connection as the daemon sees it: bytes not read yet, then maybe EOF. */
interface SimSocket {
  session: number;
  daemon: number;
  client: SimClient;
  unread: Uint8Array[];
  /** The client closed its end: after the unread bytes the daemon reads EOF. */
  eof: boolean;
  /** The daemon is done with it (EOF read, or it closed the session). */
  gone: boolean;
}

export interface ClusterResult {
  seed: number;
  sessions: number;
  entries: number;
  deliveries: number;
  configurations: number;
  crashes: number;
  simulatedMs: number;
  /** What the clients saw: TRANSITION_MESS, REG|NETWORK, and REG|NETWORK of a changed group (index ≥ 2). */
  transitions: number;
  networkViews: number;
  changedGroupViews: number;
  /** State exchanges completed / abandoned, summed over daemon incarnations still up at the end. */
  exchanges: number;
  abandoned: number;
}

export class Cluster {
  readonly scenario: ClusterScenario;
  readonly config: SpreadConfig;
  readonly vids: number[];
  readonly queue = new ActionQueue();
  readonly logs = new ClientLogCollection();
  readonly nodes: (DaemonNode | null)[];
  readonly prng: Prng;
  private readonly fabric: RingFabric;
  private readonly clients: SimClient[] = [];
  private readonly sockets = new Map<number, SimSocket>();
  private readonly dirty = new Set<number>();
  private readonly tickAt: (number | null)[] = [];
  private readonly crashedAt: number[] = [];
  private nextSession = 1;
  crashes = 0;
  trace: string[] = [];

  constructor(scenario: ClusterScenario) {
    this.scenario = scenario;
    this.prng = new Prng(scenario.seed);
    const addresses = Array.from({ length: scenario.daemons }, (_, i) => `10.0.0.${i + 1}`);
    this.config = ringTestConfig(addresses, 4803);
    this.vids = this.config.daemons.map((daemon) => daemon.vid);
    this.nodes = this.vids.map(() => null);
    const fabricPrng = new Prng(scenario.seed ^ 0xfab1c);
    if (scenario.ring === 'totem') {
      const totem = new TotemFabric(this.vids, this.config.hash, this.queue, fabricPrng, scenario.totem);
      totem.onPacket = (vid, bytes) => {
        const d = this.vids.indexOf(vid);
        const node = this.nodes[d];
        if (node === null) return;
        node.ringPacket(bytes, this.queue.nowMs);
        this.dirty.add(d);
      };
      this.fabric = totem;
    } else {
      const model = new ModelFabric(this.vids, this.queue, fabricPrng, scenario.fabric);
      model.onRingEvents = (vid) => this.dirty.add(this.vids.indexOf(vid));
      this.fabric = model;
    }
    for (let d = 0; d < scenario.daemons; d++) {
      for (let k = 0; k < scenario.clientsPerDaemon; k++) {
        this.clients.push({
          name: `c${d}x${k}`,
          daemon: d,
          session: null,
          privateGroup: '',
          recorder: null,
          handshake: null,
          framer: null,
          socket: null,
          wanted: new Set(),
        });
      }
    }
  }

  describe(): string {
    return `${describeScenario(this.scenario)} fabric: ${this.fabric.describe()}`;
  }

  // ---- daemons ----------------------------------------------------------------------------

  startDaemon(d: number): void {
    if (this.nodes[d] !== null) return;
    this.tickAt[d] = null;
    const ring = this.fabric.start(this.vids[d], this.queue.nowMs);
    this.nodes[d] = new DaemonNode({
      config: this.config,
      me: this.config.daemons[d],
      ring,
      nowMs: this.queue.nowMs,
      random: () => this.prng.float(),
    });
    this.note(`start d${d}`);
    this.dirty.add(d);
  }

  crashDaemon(d: number): void {
    const crashed = this.nodes[d];
    if (crashed === null) return;
    this.nodes[d] = null;
    this.tickAt[d] = null;
    this.crashedAt[d] = this.queue.nowMs;
    this.crashes += 1;
    this.fabric.crash(this.vids[d]);
    for (const client of this.clients) if (client.daemon === d && client.session !== null) this.endSession(client, 'daemon crashed');
    for (const socket of [...this.sockets.values()]) if (socket.daemon === d) this.sockets.delete(socket.session);
    this.note(`crash d${d}`);
  }

  partition(islands: number[][]): void {
    const map = new Map<number, number>();
    islands.forEach((island, n) => island.forEach((d) => map.set(this.vids[d], n)));
    this.fabric.setIslands(map);
    this.note(`partition ${islands.map((island) => island.map((d) => `d${d}`).join(',')).join(' | ')}`);
  }

  heal(): void {
    this.fabric.heal();
    this.note('heal');
  }

  // ---- clients ----------------------------------------------------------------------------

  connect(client: SimClient): void {
    const node = this.nodes[client.daemon];
    if (node === null || client.session !== null) return;
    const session = this.nextSession++;
    const socket: SimSocket = { session, daemon: client.daemon, client, unread: [], eof: false, gone: false };
    this.sockets.set(session, socket);
    client.session = session;
    client.socket = socket;
    client.handshake = Buffer.alloc(0);
    client.framer = null;
    client.recorder = null;
    client.wanted = new Set();
    node.sessionAccepted(session, { kind: 'unix' }, this.queue.nowMs);
    this.write(
      client,
      Buffer.concat([
        encodeConnectRequest({ version: { major: 5, minor: 0, patch: 1 }, membership: true, priority: 0, privateName: client.name }),
        encodeAuthChoice(['NULL']),
      ]),
    );
  }

  private open(client: SimClient): boolean {
    return client.session !== null && client.recorder !== null;
  }

  join(client: SimClient, group: string): void {
    if (!this.open(client)) return;
    client.recorder!.joinRequested(group);
    client.wanted.add(group);
    this.write(client, encodeControlRequest('join', client.privateGroup, group));
  }

  leave(client: SimClient, group: string): void {
    if (!this.open(client)) return;
    client.recorder!.leaveRequested(group);
    client.wanted.delete(group);
    this.write(client, encodeControlRequest('leave', client.privateGroup, group));
  }

  multicast(client: SimClient, groups: string[], service: Service, selfDiscard: boolean, padding: number): void {
    if (!this.open(client)) return;
    const id = client.recorder!.sent({ service, groups, selfDiscard });
    const type = SERVICE_BITS[service] | (selfDiscard ? ServiceType.SELF_DISCARD : 0);
    this.write(
      client,
      encodeMessage({ type, sender: client.privateGroup, groups, hintRaw: encodeHint(1), data: payloadWithId(id, padding) }),
    );
  }

  /** A clean disconnect (KILL request, then close) or an abrupt one (close). */
  disconnect(client: SimClient, clean: boolean): void {
    const socket = client.socket;
    if (socket === null) return;
    if (clean && this.open(client)) this.write(client, encodeControlRequest('kill', client.privateGroup, client.privateGroup));
    this.endSession(client, clean ? 'client disconnect' : 'client closed the socket');
    socket.eof = true;
    this.flush(socket);
  }

  private endSession(client: SimClient, reason: string): void {
    client.recorder?.closed(reason);
    client.session = null;
    client.socket = null;
    client.recorder = null;
    client.handshake = null;
    client.framer = null;
    client.wanted = new Set();
  }

  private write(client: SimClient, bytes: Uint8Array): void {
    const socket = client.socket;
    if (socket === null) return;
    socket.unread.push(bytes);
    this.flush(socket);
  }

  /** The daemon reads what the client wrote, unless it stopped reading clients (§6.4, §7.3). */
  private flush(socket: SimSocket): void {
    const node = this.nodes[socket.daemon];
    if (node === null || socket.gone) return;
    while (socket.unread.length > 0 && !node.inputThrottled()) {
      node.sessionData(socket.session, socket.unread.shift()!);
      this.dirty.add(socket.daemon);
    }
    if (socket.unread.length === 0 && socket.eof) {
      socket.gone = true;
      this.sockets.delete(socket.session);
      node.sessionEnded(socket.session, 'eof');
      this.dirty.add(socket.daemon);
    }
  }

  // ---- the loop ----------------------------------------------------------------------------

  /** Applies every node's effects (writes, closes) to the clients until nothing moves. */
  pump(): void {
    for (let round = 0; round < 10_000; round++) {
      if (this.dirty.size === 0) {
        // Input held while a daemon did not read may be readable now.
        for (const socket of [...this.sockets.values()]) if (socket.unread.length > 0 || socket.eof) this.flush(socket);
        if (this.dirty.size === 0) return;
      }
      const dirty = [...this.dirty].sort((a, b) => a - b);
      this.dirty.clear();
      for (const d of dirty) {
        const node = this.nodes[d];
        if (node === null) continue;
        const ready = node.ready();
        this.fabric.send(this.vids[d], ready.packets);
        this.scheduleTick(d, node);
        for (const write of ready.writes) for (const session of write.sessions) this.receive(session, write.bytes);
        for (const close of ready.closes) {
          const socket = this.sockets.get(close.session);
          if (!socket) continue;
          socket.gone = true;
          this.sockets.delete(close.session);
          if (socket.client.socket === socket) this.endSession(socket.client, `closed by daemon: ${close.reason}`);
        }
      }
    }
    throw new Error('pump: no fixed point');
  }

  /** Calls the node's tick at its next deadline (a later pump may move it; stale calls are ignored). */
  private scheduleTick(d: number, node: DaemonNode): void {
    const at = node.nextDeadlineMs();
    if (at === null || this.tickAt[d] === at) return;
    this.tickAt[d] = at;
    this.queue.at(at, () => {
      if (this.nodes[d] !== node || this.tickAt[d] !== at) return;
      this.tickAt[d] = null;
      node.tick(this.queue.nowMs);
      this.dirty.add(d);
    });
  }

  private receive(session: number, bytes: Uint8Array): void {
    const socket = this.sockets.get(session);
    if (!socket || socket.client.socket !== socket) return; // the client closed its end
    const client = socket.client;
    if (client.handshake !== null) {
      const buffer = Buffer.concat([client.handshake, Buffer.from(bytes)]);
      if (buffer.length < 1) return;
      const listBytes = 1 + buffer[0];
      if (buffer.length < listBytes + 5) {
        client.handshake = buffer;
        return;
      }
      const accept = buffer.subarray(listBytes);
      if (accept[0] !== 1) throw new Error(`${client.name}: handshake refused (${accept[0]})`);
      const nameLength = accept[4];
      if (accept.length < 5 + nameLength) {
        client.handshake = buffer;
        return;
      }
      client.privateGroup = accept.subarray(5, 5 + nameLength).toString('latin1');
      client.handshake = null;
      client.framer = new Framer({ groupsMax: 1000, dataBytesMax: 1 << 22, bodyBytesMax: 1 << 22, rejectCarriesOldType: true });
      client.recorder = this.logs.open({ privateGroup: client.privateGroup, daemon: this.config.daemons[client.daemon].name });
      const rest = accept.subarray(5 + nameLength);
      if (rest.length > 0) this.receive(session, rest);
      return;
    }
    for (const frame of client.framer!.push(bytes)) {
      const message = decodeMessage(frame, client.privateGroup);
      if (message === null) throw new Error(`${client.privateGroup}: undecodable message`);
      client.recorder!.received(message);
    }
  }

  /** Runs timed actions up to `untilMs` (or until `done()`), pumping the nodes after each. */
  run(untilMs: number, done: () => boolean = () => false, stepsMax = 2_000_000): boolean {
    let steps = 0;
    this.pump();
    for (;;) {
      if (done()) return true;
      const next = this.queue.peekAt();
      if (next === null || next > untilMs) {
        this.queue.nowMs = Math.max(this.queue.nowMs, untilMs);
        return done();
      }
      if (++steps > stepsMax) throw new Error(`cluster: step bound reached at ${this.queue.nowMs.toFixed(3)} ms`);
      const item = this.queue.pop()!;
      this.queue.nowMs = Math.max(this.queue.nowMs, item.at);
      item.run();
      this.pump();
    }
  }

  /** Every daemon up, everything delivered, every daemon out of its state exchange, no client bytes waiting. */
  quiet(): boolean {
    if (this.nodes.some((node) => node === null) || !this.fabric.settled()) return false;
    for (const node of this.nodes) if (node !== null && (node.groups.exchanging || node.inputThrottled())) return false;
    for (const socket of this.sockets.values()) if (socket.unread.length > 0 || socket.eof) return false;
    for (const client of this.clients) if (client.session !== null && client.recorder === null) return false;
    return true;
  }

  // ---- the seeded run ----------------------------------------------------------------------

  /** Workload + chaos, final heal with every daemon up, a last round of sends, quiescence. */
  runScenario(): ClusterResult {
    const s = this.scenario;
    const r = new Prng(s.seed ^ 0x5eed0c1a);
    const groups = Array.from({ length: s.groups }, (_, i) => `g${i}`);
    for (let d = 0; d < s.daemons; d++) this.startDaemon(d);
    for (const client of this.clients) this.queue.at(r.float() * 5, () => this.connect(client));
    const end = 10 + s.chaosPhaseMs;
    for (let i = 0; i < s.actions; i++) {
      const at = 5 + r.float() * s.chaosPhaseMs;
      const client = r.pick(this.clients);
      const roll = r.float();
      const service = r.pick(SERVICES);
      const targets = r.chance(0.3) ? groups.filter(() => r.chance(0.5)) : [r.pick(groups)];
      const privateTo = r.chance(0.15) ? r.pick(this.clients) : null;
      const selfDiscard = r.chance(0.15);
      const padding = r.chance(0.05) ? r.int(1000, 30000) : r.int(0, 40);
      const group = r.pick(groups);
      const clean = r.chance(0.5);
      this.queue.at(at, () => {
        if (client.session === null) {
          if (roll < 0.5) this.connect(client);
          return;
        }
        if (!this.open(client)) return;
        if (roll < 0.25) this.join(client, group);
        else if (roll < 0.33) this.leave(client, group);
        else if (roll < 0.95) {
          const destinations = [...targets];
          if (privateTo !== null && privateTo.session !== null && privateTo.recorder !== null) destinations.push(privateTo.privateGroup);
          if (destinations.length === 0) destinations.push(group);
          this.multicast(client, destinations, service, selfDiscard, padding);
        } else this.disconnect(client, clean);
      });
    }
    for (let i = 0; i < s.chaos; i++) {
      const at = 5 + r.float() * s.chaosPhaseMs;
      const roll = r.float();
      const d = r.int(0, s.daemons - 1);
      const shuffled = [...Array(s.daemons).keys()].sort(() => r.float() - 0.5);
      const cut = r.int(1, s.daemons - 1);
      const three = r.chance(0.3) && s.daemons >= 4;
      const downFor = s.downMs[0] + r.float() * (s.downMs[1] - s.downMs[0]);
      this.queue.at(at, () => {
        if (roll < 0.25) {
          if (this.nodes.filter((node) => node !== null).length > 1) {
            this.crashDaemon(d);
            this.queue.at(this.queue.nowMs + downFor, () => this.startDaemon(d));
          }
        } else if (roll < 0.75) {
          if (three) this.partition([shuffled.slice(0, 1), shuffled.slice(1, cut + 1), shuffled.slice(cut + 1)].filter((x) => x.length > 0));
          else this.partition([shuffled.slice(0, cut), shuffled.slice(cut)]);
        } else this.heal();
      });
    }
    this.run(end);
    // Final heal: every daemon up, one network; every client connected.
    this.heal();
    for (let d = 0; d < s.daemons; d++) {
      const at = Math.max(this.queue.nowMs, (this.crashedAt[d] ?? -Infinity) + s.downMs[0]);
      this.queue.at(at, () => this.startDaemon(d));
    }
    const settleBound = this.queue.nowMs + 60_000;
    const settled = () => this.quiet();
    if (!this.run(settleBound, settled)) throw new Error(`not quiet ${settleBound} ms after the final heal\n${this.dumpState()}`);
    for (const client of this.clients) if (client.session === null) this.connect(client);
    if (!this.run(this.queue.nowMs + 60_000, settled)) throw new Error(`clients did not connect after the heal\n${this.dumpState()}`);
    // Nothing lost: every member sends once in its final view; all must get it.
    for (const client of this.clients) {
      for (const group of [...client.wanted].sort()) this.multicast(client, [group], 'agreed', false, 0);
    }
    this.pump();
    if (!this.run(this.queue.nowMs + 60_000, settled)) throw new Error(`final sends not delivered\n${this.dumpState()}`);
    this.checkReplicas();
    const result: ClusterResult = {
      seed: s.seed,
      sessions: this.logs.logs().length,
      entries: 0,
      deliveries: 0,
      configurations: this.nodes.reduce((sum, node) => sum + (node?.ring.status().membershipChanges ?? 0), 0),
      crashes: this.crashes,
      simulatedMs: this.queue.nowMs,
      transitions: 0,
      networkViews: 0,
      changedGroupViews: 0,
      exchanges: this.nodes.reduce((sum, node) => sum + (node?.groups.exchangesCompleted ?? 0), 0),
      abandoned: this.nodes.reduce((sum, node) => sum + (node?.groups.exchangesAbandoned ?? 0), 0),
    };
    for (const log of this.logs.logs()) {
      result.entries += log.entries.length;
      for (const entry of log.entries) {
        if (entry.type === 'data') result.deliveries += 1;
        if (entry.type !== 'membership') continue;
        if (entry.kind === 'transitional') result.transitions += 1;
        if (entry.kind === 'regular' && entry.cause === 'network') {
          result.networkViews += 1;
          if (entry.gid.index > 1) result.changedGroupViews += 1;
        }
      }
    }
    return result;
  }

  /** Each daemon's group layer, ring and input state; sockets with unread bytes. */
  dumpState(): string {
    const lines = [`at ${this.queue.nowMs.toFixed(3)} ms: fabric settled=${this.fabric.settled()}, ${this.queue.size} actions queued`];
    for (const [d, node] of this.nodes.entries()) {
      if (node === null) {
        lines.push(`d${d}: down`);
        continue;
      }
      const ring = node.ring.status();
      lines.push(
        `d${d}: groups ${node.groups.state} synced=${node.groups.syncedSet().map((vid) => this.vids.indexOf(vid))} ` +
          `ring ${ring.state} ${ring.membId.procId}.${ring.membId.time} [${ring.members.map((vid) => this.vids.indexOf(vid))}] aru=${ring.aru}/${ring.highestSeq} pending=${node.ring.pendingCount()} ` +
          `throttled=${node.inputThrottled()} sessions=${node.sessionCount()} next tick=${node.nextDeadlineMs()} (scheduled ${this.tickAt[d]})`,
      );
      for (const entry of node.ring.diagnostics?.().log.slice(-4) ?? []) lines.push(`    ${entry.atMs.toFixed(1)}: ${entry.text}`);
    }
    for (const socket of this.sockets.values()) {
      if (socket.unread.length > 0 || socket.eof) lines.push(`socket ${socket.session} of ${socket.client.name}@d${socket.daemon}: ${socket.unread.length} unread, eof=${socket.eof}`);
    }
    return lines.join('\n');
  }

  /** Every daemon holds the same replicated group state and is in GOP with all daemons synced. */
  checkReplicas(): void {
    const states = this.nodes.map((node) => JSON.stringify(node?.groups.replicatedState()));
    for (let d = 1; d < states.length; d++) {
      if (states[d] !== states[0]) throw new Error(`group state differs between d0 and d${d}:\n${states[0]}\n${states[d]}`);
    }
    for (const [d, node] of this.nodes.entries()) {
      if (node === null) throw new Error(`d${d} is down after the final heal`);
      if (node.groups.state !== 'gop') throw new Error(`d${d} group layer in ${node.groups.state}`);
      if (node.groups.syncedSet().length !== this.vids.length) throw new Error(`d${d} synced with ${node.groups.syncedSet().length} daemons`);
    }
  }

  private note(text: string): void {
    this.trace.push(`${this.queue.nowMs.toFixed(3)} ${text}`);
  }
}
