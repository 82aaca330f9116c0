/**
 * Deterministic network simulator for TotemRing (TigerBeetle VOPR style).
 *
 * Many rings run in one process on a simulated clock. Every datagram goes into
 * one priority queue ordered by (ready time, insertion order); the seeded PRNG
 * decides loss, duplication and delay (jitter reorders). Between datagrams the
 * simulator fires each ring's `nextDeadlineMs()`. The same seed and commit give
 * the same run, event for event.
 *
 * Faults beyond the network: `crash(i)` stops a node (its ring object is kept as a
 * dead incarnation, so checkers can still ask what it held), `restart(i, atMs)`
 * starts it again as a fresh daemon with its state lost (but for its ring identity), and `partition([[…], […]])`
 * drops every datagram between components until `heal()`.
 *
 * The simulator records what it can observe from outside the rings: every event
 * each ring emitted (with its incarnation) and every message a ring accepted.
 */
import { TotemRing, type TotemOptions } from '../../src/ring/totem.js';
import type { RingEvent } from '../../src/ring/types.js';
import { Prng } from './prng.js';

export interface FaultOptions {
  /** Probability a datagram copy is dropped. */
  loss: number;
  /** Probability a datagram is delivered twice. */
  duplicate: number;
  /** Fixed one-way delay (ms). */
  delayMs: number;
  /** Uniform extra delay in [0, jitterMs) per datagram: reorders. */
  jitterMs: number;
}

export type SimNodeOptions = Partial<Omit<TotemOptions, 'myVid' | 'members' | 'nowMs'>> & { configHash: number };

interface InFlight {
  atMs: number;
  order: number;
  from: number;
  to: number;
  bytes: Uint8Array;
}

/** Binary min-heap on (atMs, order). */
class FlightQueue {
  private items: InFlight[] = [];

  get size(): number {
    return this.items.length;
  }

  peek(): InFlight | undefined {
    return this.items[0];
  }

  push(item: InFlight): void {
    const a = this.items;
    a.push(item);
    let i = a.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(a[i], a[parent])) break;
      [a[i], a[parent]] = [a[parent], a[i]];
      i = parent;
    }
  }

  pop(): InFlight | undefined {
    const a = this.items;
    if (a.length === 0) return undefined;
    const top = a[0];
    const last = a.pop()!;
    if (a.length > 0) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && before(a[l], a[m])) m = l;
        if (r < a.length && before(a[r], a[m])) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m], a[i]];
        i = m;
      }
    }
    return top;
  }
}

function before(x: InFlight, y: InFlight): boolean {
  return x.atMs < y.atMs || (x.atMs === y.atMs && x.order < y.order);
}

export interface DeliveryRecord {
  atMs: number;
  event: RingEvent;
  /** The incarnation that emitted it. */
  ring: TotemRing;
}

export interface SimNode {
  vid: number;
  index: number;
  /** The running incarnation, or null (not started yet, or crashed). */
  ring: TotemRing | null;
  /** When the next incarnation starts (Infinity: crashed, no restart planned). */
  startAtMs: number;
  /** Events of every incarnation, in order. */
  events: DeliveryRecord[];
  /** Messages the workload wants to submit here but submit() refused (back-pressure). */
  backlog: { payload: Uint8Array; safe: boolean }[];
  /** Every incarnation ever started here, oldest first (the last one may be running). */
  incarnations: TotemRing[];
  /** While > now, the node is stalled (see Simulator.pause); 0 when it is not. */
  pausedUntilMs: number;
}

export class Simulator {
  readonly prng: Prng;
  readonly nodes: SimNode[];
  readonly vids: number[];
  nowMs = 0;
  faults: FaultOptions;
  steps = 0;
  datagramsSent = 0;
  datagramsDropped = 0;
  lastDatagramAtMs = 0;
  /** Per-link filter (partitions, targeted loss): return true to drop the datagram. */
  dropIf: ((from: number, to: number, bytes: Uint8Array) => boolean) | null = null;
  /** Called after each event a ring emits (the checker's online SAFE check hooks in here). */
  onEvent: ((node: SimNode, event: RingEvent, ring: TotemRing) => void) | null = null;
  /** Called when a ring accepts a message the workload offered (submit() returned true). */
  onAccept: ((node: SimNode, payload: Uint8Array, safe: boolean, ring: TotemRing) => void) | null = null;
  /** Network components while partitioned (node indexes), or null. */
  components: number[][] | null = null;
  private componentOf: number[] = [];

  private readonly queue = new FlightQueue();
  private order = 0;
  private readonly nodeOptions: SimNodeOptions;

  private readonly overrides: Partial<TotemOptions>[];

  /** `overrides[i]` replaces options of node i only (e.g. a different configuration hash). */
  constructor(seed: number, nodeCount: number, faults: FaultOptions, nodeOptions: SimNodeOptions, startSpreadMs = 0, overrides: Partial<TotemOptions>[] = []) {
    this.overrides = overrides;
    this.prng = new Prng(seed);
    this.faults = faults;
    this.nodeOptions = nodeOptions;
    // VIDs are arbitrary non-zero u32 values; configuration order is array order.
    this.vids = Array.from({ length: nodeCount }, (_, i) => 0x01000000 + i * 7919 + 1);
    this.nodes = this.vids.map((vid, index) => ({
      vid,
      index,
      ring: null,
      startAtMs: index === 0 ? 0 : this.prng.float() * startSpreadMs,
      events: [],
      backlog: [],
      incarnations: [],
      pausedUntilMs: 0,
    }));
  }

  /** The node stops: no more input, output or timers; its state is kept for checks only. */
  crash(index: number): void {
    const node = this.nodes[index];
    node.ring = null;
    node.startAtMs = Infinity;
    node.backlog = []; // never accepted: the workload's wish dies with the process
  }

  /**
   * A crashed node starts again at `atMs` (at once by default) as a fresh daemon: its state
   * is lost but for what a daemon keeps across restarts (see step()).
   */
  restart(index: number, atMs = this.nowMs): void {
    const node = this.nodes[index];
    if (node.ring !== null) this.crash(index);
    node.startAtMs = Math.max(atMs, this.nowMs);
  }

  /** Drop every datagram between different components (nodes not listed form one more component). */
  partition(components: number[][]): void {
    const listed = new Set(components.flat());
    const rest = this.nodes.map((n) => n.index).filter((i) => !listed.has(i));
    this.components = rest.length > 0 ? [...components, rest] : components;
    this.componentOf = [];
    this.components.forEach((c, k) => c.forEach((i) => (this.componentOf[i] = k)));
  }

  heal(): void {
    this.components = null;
    this.componentOf = [];
  }

  alive(index: number): boolean {
    return this.nodes[index].ring !== null;
  }

  /** Next time something happens, or null when nothing ever will. */
  private nextAtMs(): number | null {
    let next: number | null = null;
    const top = this.queue.peek();
    if (top !== undefined) next = top.atMs;
    for (const node of this.nodes) {
      let at = node.ring === null ? node.startAtMs : node.ring.nextDeadlineMs();
      if (at !== null && node.pausedUntilMs > this.nowMs) at = Math.max(at, node.pausedUntilMs);
      if (at !== null && (next === null || at < next)) next = at;
    }
    return next;
  }

  /**
   * The node's process stalls until `untilMs` (CPU starvation, a long synchronous task): it
   * neither reads datagrams (they wait, as in a socket buffer) nor runs timers. When it wakes,
   * its timers fire first, then it reads what arrived, as in Node's event loop.
   */
  pause(index: number, untilMs: number): void {
    this.nodes[index].pausedUntilMs = Math.max(this.nodes[index].pausedUntilMs, untilMs);
  }

  /** Runs until `untilMs` or `done()` holds (checked after every step), within `stepsMax` steps. */
  run(untilMs: number, done: () => boolean = () => false, stepsMax = 5_000_000): boolean {
    for (;;) {
      if (done()) return true;
      const next = this.nextAtMs();
      if (next === null || next > untilMs) {
        this.nowMs = Math.max(this.nowMs, untilMs);
        return done();
      }
      if (++this.steps > stepsMax) throw new Error(`simulator: step bound ${stepsMax} reached at ${this.nowMs} ms`);
      this.nowMs = Math.max(this.nowMs, next);
      this.step();
    }
  }

  private step(): void {
    for (const node of this.nodes) {
      if (node.ring === null && node.startAtMs <= this.nowMs) {
        // What a daemon keeps across restarts (src/daemon/ring-identity.ts): a count of its lives and
        // the highest ring time it formed.
        const previous = node.incarnations.at(-1);
        const kept = { incarnation: node.incarnations.length + 1, ringTimeFloor: previous?.formedRingTime() ?? 0 };
        node.ring = new TotemRing({ traceDeliveries: true, ...kept, ...this.nodeOptions, ...this.overrides[node.index], myVid: node.vid, members: this.vids, nowMs: this.nowMs });
        node.incarnations.push(node.ring);
        this.drain(node);
        return;
      }
    }
    for (const node of this.nodes) {
      // Just woke up from a pause: timers first.
      if (node.pausedUntilMs === 0 || node.pausedUntilMs > this.nowMs) continue;
      node.pausedUntilMs = 0;
      const at = node.ring?.nextDeadlineMs() ?? null;
      if (node.ring !== null && at !== null && at <= this.nowMs) {
        node.ring.tick(this.nowMs);
        this.drain(node);
        return;
      }
    }
    const top = this.queue.peek();
    if (top !== undefined && top.atMs <= this.nowMs) {
      this.queue.pop();
      const node = this.nodes[top.to];
      if (node.ring === null) return; // not started yet: the datagram is lost
      if (node.pausedUntilMs > this.nowMs) {
        this.queue.push({ ...top, atMs: node.pausedUntilMs, order: this.order++ });
        return;
      }
      node.ring.receive(top.bytes, this.nowMs);
      this.drain(node);
      return;
    }
    for (const node of this.nodes) {
      const ring = node.ring;
      if (ring === null || node.pausedUntilMs > this.nowMs) continue;
      const at = ring.nextDeadlineMs();
      if (at !== null && at <= this.nowMs) {
        ring.tick(this.nowMs);
        this.drain(node);
        return;
      }
    }
  }

  /** Offer a message to a node; refused ones wait in its backlog. */
  submit(nodeIndex: number, payload: Uint8Array, safe: boolean): void {
    const node = this.nodes[nodeIndex];
    node.backlog.push({ payload, safe });
    if (node.ring !== null) this.drain(node);
  }

  /** Hands a ring's effects to the network and the event log, then retries its backlog. */
  private drain(node: SimNode): void {
    const ring = node.ring!;
    while (node.backlog.length > 0 && ring.submit(node.backlog[0].payload, node.backlog[0].safe)) {
      const accepted = node.backlog.shift()!;
      this.onAccept?.(node, accepted.payload, accepted.safe, ring);
    }
    const ready = ring.ready();
    for (const p of ready.packets) {
      if (p.to === 'all') {
        for (const other of this.nodes) if (other !== node) this.transmit(node.index, other.index, p.bytes);
      } else {
        const to = this.vids.indexOf(p.to);
        if (to < 0) throw new Error(`packet to unknown VID ${p.to}`);
        this.transmit(node.index, to, p.bytes);
      }
    }
    for (const event of ready.events) {
      node.events.push({ atMs: this.nowMs, event, ring });
      this.onEvent?.(node, event, ring);
    }
  }

  private transmit(from: number, to: number, bytes: Uint8Array): void {
    this.datagramsSent++;
    this.lastDatagramAtMs = this.nowMs;
    const f = this.faults;
    const cut = this.components !== null && this.componentOf[from] !== this.componentOf[to];
    if (cut || (f.loss > 0 && this.prng.chance(f.loss)) || (this.dropIf !== null && this.dropIf(from, to, bytes))) {
      this.datagramsDropped++;
      return;
    }
    const copies = f.duplicate > 0 && this.prng.chance(f.duplicate) ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      const atMs = this.nowMs + f.delayMs + (f.jitterMs > 0 ? this.prng.float() * f.jitterMs : 0);
      this.queue.push({ atMs, order: this.order++, from, to, bytes });
    }
  }

  /** Records original DATA packets by seq and maps message ordinals to the packets that carry them. */
  inFlight(): number {
    return this.queue.size;
  }
}
