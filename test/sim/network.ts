/**
 * Deterministic network simulator for TotemRing (TigerBeetle VOPR style).
 *
 * Many rings run in one process on a simulated clock. Every datagram goes into
 * one priority queue ordered by (ready time, insertion order); the seeded PRNG
 * decides loss, duplication and delay (jitter reorders). Between datagrams the
 * simulator fires each ring's `nextDeadlineMs()`. The same seed and commit give
 * the same run, event for event.
 *
 * The simulator records what it can observe from outside the rings: every
 * original DATA packet on the wire (to map a message to the packets carrying
 * it) and every event each ring emitted. The checker (checker.ts) works from that.
 */
import { DataFlag, decodePacket, FragmentFlag, PacketType } from '../../src/ring/packet.js';
import { type TotemOptions, TotemRing } from '../../src/ring/totem.js';
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
}

export interface SimNode {
  vid: number;
  index: number;
  ring: TotemRing | null;
  startAtMs: number;
  events: DeliveryRecord[];
  /** Messages the workload wants to submit here but submit() refused (back-pressure). */
  backlog: { payload: Uint8Array; safe: boolean }[];
}

/** A message's packets, as observed on the wire (message ordinal → packet seqs). */
export interface WireLog {
  messageSeqs: number[][];
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
  onEvent: ((node: SimNode, event: RingEvent) => void) | null = null;

  private readonly queue = new FlightQueue();
  private order = 0;
  private readonly nodeOptions: SimNodeOptions;
  private readonly wirePackets = new Map<number, { origin: number; flags: number[] }>();
  private wireNextSeq: number;
  private readonly wireOpen = new Map<number, number[]>();
  readonly wire: WireLog = { messageSeqs: [] };

  private readonly overrides: Partial<TotemOptions>[];

  /** `overrides[i]` replaces options of node i only (e.g. a different configuration hash). */
  constructor(seed: number, nodeCount: number, faults: FaultOptions, nodeOptions: SimNodeOptions, startSpreadMs = 0, overrides: Partial<TotemOptions>[] = []) {
    this.overrides = overrides;
    this.prng = new Prng(seed);
    this.faults = faults;
    this.nodeOptions = nodeOptions;
    this.wireNextSeq = ((nodeOptions.initialSeq ?? 0) + 1) >>> 0;
    // VIDs are arbitrary non-zero u32 values; configuration order is array order.
    this.vids = Array.from({ length: nodeCount }, (_, i) => 0x01000000 + i * 7919 + 1);
    this.nodes = this.vids.map((vid, index) => ({
      vid,
      index,
      ring: null,
      startAtMs: index === 0 ? 0 : this.prng.float() * startSpreadMs,
      events: [],
      backlog: [],
    }));
  }

  /** Next time something happens, or null when nothing ever will. */
  private nextAtMs(): number | null {
    let next: number | null = null;
    const top = this.queue.peek();
    if (top !== undefined) next = top.atMs;
    for (const node of this.nodes) {
      const at = node.ring === null ? node.startAtMs : node.ring.nextDeadlineMs();
      if (at !== null && (next === null || at < next)) next = at;
    }
    return next;
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
        node.ring = new TotemRing({ ...this.nodeOptions, ...this.overrides[node.index], myVid: node.vid, members: this.vids, nowMs: this.nowMs });
        this.drain(node);
        return;
      }
    }
    const top = this.queue.peek();
    if (top !== undefined && top.atMs <= this.nowMs) {
      this.queue.pop();
      const node = this.nodes[top.to];
      if (node.ring === null) return; // not started yet: the datagram is lost
      node.ring.receive(top.bytes, this.nowMs);
      this.drain(node);
      return;
    }
    for (const node of this.nodes) {
      const ring = node.ring;
      if (ring === null) continue;
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
    while (node.backlog.length > 0 && ring.submit(node.backlog[0].payload, node.backlog[0].safe)) node.backlog.shift();
    const ready = ring.ready();
    for (const p of ready.packets) {
      this.observeWire(node, p.bytes);
      if (p.to === 'all') {
        for (const other of this.nodes) if (other !== node) this.transmit(node.index, other.index, p.bytes);
      } else {
        const to = this.vids.indexOf(p.to);
        if (to < 0) throw new Error(`packet to unknown VID ${p.to}`);
        this.transmit(node.index, to, p.bytes);
      }
    }
    for (const event of ready.events) {
      node.events.push({ atMs: this.nowMs, event });
      this.onEvent?.(node, event);
    }
  }

  private transmit(from: number, to: number, bytes: Uint8Array): void {
    this.datagramsSent++;
    this.lastDatagramAtMs = this.nowMs;
    const f = this.faults;
    if ((f.loss > 0 && this.prng.chance(f.loss)) || (this.dropIf !== null && this.dropIf(from, to, bytes))) {
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
  private observeWire(node: SimNode, bytes: Uint8Array): void {
    const decoded = decodePacket(bytes);
    if (!decoded.ok) throw new Error(`ring ${node.vid} sent a malformed packet: ${decoded.error.message}`);
    const p = decoded.packet;
    if (p.type !== PacketType.DATA || (p.flags & DataFlag.RETRANSMISSION) !== 0) return;
    if (p.origin !== node.vid) throw new Error(`ring ${node.vid} sent an original packet of ${p.origin}`);
    if (this.wirePackets.has(p.seq) || ((p.seq - this.wireNextSeq) | 0) < 0) throw new Error(`seq ${p.seq} assigned twice`);
    this.wirePackets.set(p.seq, { origin: p.origin, flags: p.fragments.map((f) => f.flags) });
    // Walk contiguous seqs in order, assigning message ordinals the way every ring must.
    for (;;) {
      const next = this.wirePackets.get(this.wireNextSeq);
      if (next === undefined) break;
      for (const flags of next.flags) {
        let seqs = this.wireOpen.get(next.origin);
        if ((flags & FragmentFlag.FIRST) !== 0 || seqs === undefined) seqs = [];
        if (seqs[seqs.length - 1] !== this.wireNextSeq) seqs.push(this.wireNextSeq);
        this.wireOpen.set(next.origin, seqs);
        if ((flags & FragmentFlag.LAST) !== 0) {
          this.wire.messageSeqs.push(seqs);
          this.wireOpen.delete(next.origin);
        }
      }
      this.wirePackets.delete(this.wireNextSeq);
      this.wireNextSeq = (this.wireNextSeq + 1) >>> 0;
    }
  }

  inFlight(): number {
    return this.queue.size;
  }
}
