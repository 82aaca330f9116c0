/**
 * A model of daemon-level Extended Virtual Synchrony for the whole-daemon simulator:
 * `ModelRing` implements the Ring interface, and one `EvsFabric` orders every ring's
 * messages per component (a set of daemons that currently form one ring) and installs
 * configurations as Totem does (§7.3, §11.4), without packets. It stands in for
 * TotemRing until that ring handles partitions and merges, and it reaches corners the
 * real ring rarely shows (partial holdings at the moment of a change, gaps, SAFE
 * messages beyond the old aru, changes in quick succession).
 *
 * Per component: a sequencer takes each member's queued submissions in rotation and
 * numbers them; every member then *holds* a message after a seeded delay (longer when
 * the seed's loss strikes, never across a cut: it retries until it leaves the ring).
 * A member delivers in order: an AGREED message once it holds it and all before it, a
 * SAFE one once every member of the ring holds everything up to it (the aru).
 *
 * A configuration change (`reconfigure`, when the cuts, crashes and restarts are no
 * longer what the rings are): every group of connected live daemons becomes one ring.
 * For each old ring and each transitional set T (its daemons that move together into
 * the same new ring), the messages T can recover are the ones any of T holds; each
 * daemon of T delivers, in order, those up to the first gap or the first SAFE message
 * beyond the old aru, then the transitional configuration, then the rest it can
 * recover (after the first gap only those sent by T's daemons), then the regular
 * configuration. Every daemon of T thus delivers the same messages on the same side of
 * the transitional configuration. Submissions not yet numbered go to the new ring.
 */
import type { MembershipId, OutboundPacket, Ring, RingEvent, RingReady, RingStatus } from '../../src/ring/types.js';
import { Prng } from './prng.js';

export interface Scheduler {
  readonly nowMs: number;
  at(timeMs: number, run: () => void): void;
}

export interface FabricOptions {
  /** Probability that one member's first copy of a message is lost (held later, by retransmission). */
  loss: number;
  /** Uniform receive delay range (ms). */
  delayMs: [number, number];
  /** Delay between a change of cuts/crashes and the new configuration (ms). */
  reconfigureMs: [number, number];
  /** Messages one member may have numbered per rotation. */
  perRotation: number;
  /** Bound on each ring's unnumbered queue (submit returns false beyond it). */
  queueMax: number;
}

interface Message {
  seq: number;
  origin: number;
  payload: Uint8Array;
  safe: boolean;
  heldBy: Set<number>;
}

interface Component {
  id: number;
  membId: MembershipId;
  /** VIDs in configuration order. */
  members: number[];
  log: Message[];
  /** Messages delivered per member (index into log). */
  delivered: Map<number, number>;
  /** All members hold log[0 .. aru). */
  aru: number;
  rotationPending: boolean;
  live: boolean;
}

interface DaemonSlot {
  vid: number;
  ring: ModelRing | null;
  comp: Component | null;
  lastMembId: MembershipId;
}

export class ModelRing implements Ring {
  readonly myVid: number;
  readonly queue: { payload: Uint8Array; safe: boolean }[] = [];
  private events: RingEvent[] = [];
  private readonly fabric: EvsFabric;
  membId: MembershipId = { procId: 0, time: 0 };
  members: number[] = [];
  delivered = 0;
  changes = 0;
  /** Called when events were queued (the simulator pumps the node). */
  onEvents: (() => void) | null = null;

  constructor(fabric: EvsFabric, vid: number) {
    this.fabric = fabric;
    this.myVid = vid;
  }

  submit(payload: Uint8Array, safe: boolean): boolean {
    if (this.queue.length >= this.fabric.options.queueMax) return false;
    this.queue.push({ payload, safe });
    this.fabric.wake(this.myVid);
    return true;
  }

  receive(): void {}
  tick(): void {}

  push(event: RingEvent): void {
    if (event.kind === 'deliver') this.delivered += 1;
    else {
      this.changes += 1;
      if (event.kind === 'regular') {
        this.membId = { ...event.membId };
        this.members = [...event.members];
      }
    }
    this.events.push(event);
    this.onEvents?.();
  }

  ready(): RingReady {
    const events = this.events;
    this.events = [];
    return { packets: [] as OutboundPacket[], events };
  }

  nextDeadlineMs(): number | null {
    return null;
  }

  pendingCount(): number {
    return this.queue.length;
  }

  status(): RingStatus {
    return {
      state: 'op',
      myVid: this.myVid,
      leaderVid: this.members[0] ?? this.myVid,
      membId: this.membId,
      members: this.members,
      aru: this.delivered,
      myAru: this.delivered,
      highestSeq: this.delivered,
      packetsSent: 0,
      packetsReceived: 0,
      packetsDelivered: this.delivered,
      retransmissions: 0,
      tokenHurry: 0,
      tokenRounds: 0,
      membershipChanges: this.changes,
      window: 160,
      personalWindow: 20,
      acceleratedRing: false,
      acceleratedWindow: 0,
      datagramBytes: 0,
    };
  }
}

export class EvsFabric {
  readonly options: FabricOptions;
  private readonly prng: Prng;
  private readonly scheduler: Scheduler;
  /** Configuration order. */
  private readonly slots: DaemonSlot[];
  private readonly byVid = new Map<number, DaemonSlot>();
  /** Connectivity: daemons with the same number can reach each other. */
  private readonly island = new Map<number, number>();
  private clock = 0;
  private nextComponentId = 1;
  private reconfigurePending = false;
  configurations = 0;

  constructor(vids: number[], scheduler: Scheduler, prng: Prng, options: FabricOptions) {
    this.options = options;
    this.prng = prng;
    this.scheduler = scheduler;
    this.slots = vids.map((vid) => ({ vid, ring: null, comp: null, lastMembId: { procId: 0, time: 0 } }));
    for (const slot of this.slots) {
      this.byVid.set(slot.vid, slot);
      this.island.set(slot.vid, 0);
    }
  }

  /** A daemon (re)starts: a fresh ring, alone in its first configuration (no transitional). */
  start(vid: number): ModelRing {
    const slot = this.slot(vid);
    if (slot.ring !== null) throw new Error(`daemon ${vid} already running`);
    const ring = new ModelRing(this, vid);
    slot.ring = ring;
    const comp = this.newComponent([vid]);
    slot.comp = comp;
    this.scheduler.at(this.scheduler.nowMs, () => {
      if (slot.ring !== ring) return;
      ring.push({ kind: 'regular', membId: { ...comp.membId }, members: [vid], previous: [{ procId: 0, time: 0 }] });
      slot.lastMembId = { ...comp.membId };
    });
    this.changed();
    return ring;
  }

  crash(vid: number): void {
    const slot = this.slot(vid);
    slot.ring = null;
    slot.comp = null;
    this.changed();
  }

  /** Daemons with the same island number are connected; others are cut apart. */
  setIslands(islands: Map<number, number>): void {
    for (const [vid, island] of islands) this.island.set(vid, island);
    this.changed();
  }

  heal(): void {
    for (const vid of this.island.keys()) this.island.set(vid, 0);
    this.changed();
  }

  running(vid: number): boolean {
    return this.slot(vid).ring !== null;
  }

  /** True when every ring matches the islands and nothing is queued or undelivered. */
  settled(): boolean {
    if (this.reconfigurePending || this.needsReconfiguration()) return false;
    for (const slot of this.slots) {
      if (slot.ring === null || slot.comp === null) continue;
      if (slot.ring.queue.length > 0) return false;
      if ((slot.comp.delivered.get(slot.vid) ?? 0) < slot.comp.log.length) return false;
    }
    return true;
  }

  /** A member has new submissions: make sure its ring rotates soon. */
  wake(vid: number): void {
    const comp = this.slot(vid).comp;
    if (comp !== null) this.scheduleRotation(comp);
  }

  private slot(vid: number): DaemonSlot {
    const slot = this.byVid.get(vid);
    if (!slot) throw new Error(`unknown daemon ${vid}`);
    return slot;
  }

  private newComponent(members: number[]): Component {
    this.clock += 1;
    return {
      id: this.nextComponentId++,
      membId: { procId: members[0], time: this.clock },
      members,
      log: [],
      delivered: new Map(members.map((vid) => [vid, 0])),
      aru: 0,
      rotationPending: false,
      live: true,
    };
  }

  private changed(): void {
    if (this.reconfigurePending) return;
    this.reconfigurePending = true;
    const [lo, hi] = this.options.reconfigureMs;
    this.scheduler.at(this.scheduler.nowMs + lo + this.prng.float() * (hi - lo), () => {
      this.reconfigurePending = false;
      this.reconfigure();
    });
  }

  /** The rings the islands call for, as sorted VID lists (configuration order). */
  private targets(): number[][] {
    const groups = new Map<number, number[]>();
    for (const slot of this.slots) {
      if (slot.ring === null) continue;
      const island = this.island.get(slot.vid) as number;
      let list = groups.get(island);
      if (!list) {
        list = [];
        groups.set(island, list);
      }
      list.push(slot.vid);
    }
    return [...groups.values()];
  }

  private needsReconfiguration(): boolean {
    for (const target of this.targets()) {
      const comp = this.slot(target[0]).comp;
      if (comp === null || !sameList(comp.members, target)) return true;
      if (target.some((vid) => this.slot(vid).comp !== comp)) return true;
    }
    return false;
  }

  private reconfigure(): void {
    for (const target of this.targets()) {
      const first = this.slot(target[0]).comp;
      if (first !== null && sameList(first.members, target) && target.every((vid) => this.slot(vid).comp === first)) continue;
      this.install(target);
    }
    // A ring cut apart stopped turning for some members; a heal may let it turn again.
    for (const slot of this.slots) if (slot.comp !== null) this.scheduleRotation(slot.comp);
  }

  /** Forms one new ring of `members` (configuration order) from whatever rings they were in. */
  private install(members: number[]): void {
    const next = this.newComponent(members);
    this.configurations += 1;
    const inNew = new Set(members);
    // Old rings, in order of their first member here.
    const olds: Component[] = [];
    for (const vid of members) {
      const comp = this.slot(vid).comp;
      if (comp !== null && !olds.includes(comp)) olds.push(comp);
    }
    const previous = members.map((vid) => ({ ...this.slot(vid).lastMembId }));
    for (const old of olds) {
      const trans = old.members.filter((vid) => inNew.has(vid) && this.slot(vid).comp === old);
      this.finishOldRing(old, trans, next.membId);
      for (const vid of trans) this.slot(vid).comp = next;
      if (old.members.every((vid) => this.slot(vid).comp !== old)) old.live = false;
    }
    for (const vid of members) {
      const slot = this.slot(vid);
      slot.ring?.push({ kind: 'regular', membId: { ...next.membId }, members: [...members], previous });
      slot.lastMembId = { ...next.membId };
    }
    this.scheduleRotation(next);
  }

  /** EVS delivery of `old`'s messages at the transitional set `trans`, then its transitional configuration. */
  private finishOldRing(old: Component, trans: number[], membId: MembershipId): void {
    const inTrans = new Set(trans);
    const recoverable = (m: Message): boolean => trans.some((vid) => m.heldBy.has(vid));
    let regularEnd = 0;
    while (regularEnd < old.log.length) {
      const m = old.log[regularEnd];
      if (!recoverable(m) || (m.safe && regularEnd >= old.aru)) break;
      regularEnd += 1;
    }
    const after: Message[] = [];
    let gap = false;
    for (let i = regularEnd; i < old.log.length; i++) {
      const m = old.log[i];
      if (!recoverable(m)) {
        gap = true;
        continue;
      }
      if (!gap || inTrans.has(m.origin)) after.push(m);
    }
    for (const vid of trans) {
      const ring = this.slot(vid).ring as ModelRing;
      const from = old.delivered.get(vid) ?? 0;
      if (from > regularEnd) throw new Error(`model: daemon ${vid} delivered past the regular end of ring ${old.id}`);
      for (let i = from; i < regularEnd; i++) this.deliverTo(ring, old.log[i]);
      ring.push({ kind: 'transitional', membId: { ...membId }, members: [...trans] });
      for (const m of after) this.deliverTo(ring, m);
      old.delivered.set(vid, old.log.length);
    }
  }

  private deliverTo(ring: ModelRing, m: Message): void {
    ring.push({ kind: 'deliver', seq: m.seq, origin: m.origin, safe: m.safe, payload: m.payload });
  }

  private scheduleRotation(comp: Component): void {
    if (comp.rotationPending || !comp.live) return;
    comp.rotationPending = true;
    this.scheduler.at(this.scheduler.nowMs + 0.1 + this.prng.float() * 1.5, () => {
      comp.rotationPending = false;
      this.rotate(comp);
    });
  }

  /** One token rotation: each live member numbers up to `perRotation` of its queued messages. */
  private rotate(comp: Component): void {
    if (!comp.live) return;
    let more = false;
    for (const vid of comp.members) {
      const slot = this.slot(vid);
      if (slot.comp !== comp || slot.ring === null) continue;
      // A ring cut apart stops turning for the members that cannot reach its first live one.
      const leader = comp.members.find((member) => this.slot(member).comp === comp && this.slot(member).ring !== null);
      if (leader !== undefined && this.island.get(leader) !== this.island.get(vid)) continue;
      const queue = slot.ring.queue;
      const count = Math.min(queue.length, this.options.perRotation);
      for (const item of queue.splice(0, count)) {
        const m: Message = { seq: comp.log.length + 1, origin: vid, payload: item.payload, safe: item.safe, heldBy: new Set([vid]) };
        comp.log.push(m);
        for (const member of comp.members) if (member !== vid) this.scheduleReceive(comp, m, member, false);
      }
      if (queue.length > 0) more = true;
    }
    this.advance(comp);
    if (more) this.scheduleRotation(comp);
  }

  private scheduleReceive(comp: Component, m: Message, vid: number, retry: boolean): void {
    const [lo, hi] = this.options.delayMs;
    let delay = lo + this.prng.float() * (hi - lo);
    if (retry || this.prng.chance(this.options.loss)) delay += 2 + this.prng.float() * 10;
    this.scheduler.at(this.scheduler.nowMs + delay, () => {
      if (!comp.live) return;
      const slot = this.slot(vid);
      if (slot.comp !== comp || slot.ring === null) return;
      const reachable = [...m.heldBy].some((holder) => {
        const h = this.slot(holder);
        return h.comp === comp && h.ring !== null && this.island.get(holder) === this.island.get(vid);
      });
      if (!reachable) {
        this.scheduleReceive(comp, m, vid, true);
        return;
      }
      m.heldBy.add(vid);
      this.advance(comp);
    });
  }

  /** Raises the aru and delivers whatever each member may deliver now. */
  private advance(comp: Component): void {
    while (comp.aru < comp.log.length && comp.members.every((vid) => comp.log[comp.aru].heldBy.has(vid))) comp.aru += 1;
    for (const vid of comp.members) {
      const slot = this.slot(vid);
      if (slot.comp !== comp || slot.ring === null) continue;
      let index = comp.delivered.get(vid) ?? 0;
      while (index < comp.log.length) {
        const m = comp.log[index];
        if (!m.heldBy.has(vid) || (m.safe && index >= comp.aru)) break;
        this.deliverTo(slot.ring, m);
        index += 1;
      }
      comp.delivered.set(vid, index);
    }
  }
}

function sameList(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((value, i) => value === b[i]);
}
