/**
 * Ring-level Extended Virtual Synchrony checker over what each ring incarnation
 * emitted (plus what the simulator can observe: which messages a ring accepted,
 * and which packets a ring holds). Online checks run at each event; `checkFinal`
 * and the liveness helpers after the final heal. The rings must be built with
 * `traceDeliveries` (deliver events carry the packet seq that completed them).
 *
 * Every payload carries a 4-byte message id in front (added by `submit`), so a
 * delivery names exactly one accepted message.
 *
 *  - no creation: a delivered message was accepted by a ring of its origin, with these bytes;
 *  - no duplication: an incarnation delivers a message at most once;
 *  - per-origin FIFO: an incarnation delivers one origin incarnation's messages in submit order;
 *  - total order: a message is delivered at the same place (ring id, packet seq, index in
 *    packet) everywhere, and each incarnation delivers places in increasing order; ring ids
 *    strictly increase along each incarnation's configurations;
 *  - configurations: a ring id always names the same members; after the first regular
 *    configuration every change is transitional then regular; the transitional set holds
 *    me, is within both rings, and is exactly the members whose `previous` is my old ring;
 *  - SAFE: delivered in C before C's transitional ⇒ every member of C holds its packet;
 *    after the transitional ⇒ every member of the transitional set holds it;
 *  - virtual synchrony (checkFinal): incarnations that move together from C to C' delivered
 *    the same messages in C, with the same ones before the transitional;
 *  - nothing lost (checkFinal): a message delivered in C by its origin, which is alive at the
 *    end, is delivered in C by every live incarnation whose transitional set for C holds the
 *    origin (or that is still in C); every message a live incarnation accepted, it delivered.
 */
import type { TotemRing } from '../../src/ring/totem.js';
import type { MembershipId, RingEvent } from '../../src/ring/types.js';
import type { SimNode, Simulator } from './network.js';

export interface MessageDigest {
  origin: number;
  length: number;
  hash: number;
  safe: boolean;
}

export function fnv1a(bytes: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i], 0x01000193);
  return h >>> 0;
}

const ID_BYTES = 4;

interface Message {
  id: number;
  node: SimNode;
  digest: MessageDigest;
  /** The incarnation that accepted it (null: still in the workload's backlog, or lost with a crash). */
  acceptedBy: TotemRing | null;
  /** Its index among the messages that incarnation accepted. */
  index: number;
  deliveredBy: Set<TotemRing>;
}

interface ConfigRecord {
  key: string;
  membId: MembershipId;
  members: number[];
  delivered: number[];
  /** delivered.length when the transitional came, or -1. */
  transAt: number;
  trans: number[] | null;
  next: string | null;
  /** Last place delivered: packet seq offset and index within the packet. */
  lastPlace: number;
  lastPacket: number;
  indexInPacket: number;
}

interface Incarnation {
  node: SimNode;
  ring: TotemRing;
  configs: ConfigRecord[];
  delivered: Set<number>;
  /** Per origin incarnation: index of the last message delivered. */
  lastIndex: Map<TotemRing, number>;
  acceptedCount: number;
  /** A transitional came; the next configuration event must be regular. */
  inTransition: boolean;
}

function key(id: MembershipId): string {
  return `${id.procId}/${id.time}`;
}

export class Checker {
  readonly messages: Message[] = [];
  private readonly incarnations = new Map<TotemRing, Incarnation>();
  private readonly configMembers = new Map<string, string>();
  private readonly places = new Map<string, number>();
  private nextId = 1;
  submittedTotal = 0;
  safeChecked = 0;
  deliveries = 0;
  configurationChanges = 0;
  /** Set by any configuration event (liveness polling is cheap when nothing changed). */
  dirty = true;

  constructor(
    private readonly sim: Simulator,
    private readonly initialSeq = 0,
  ) {
    sim.onEvent = (node, event, ring) => this.onEvent(node, event, ring);
    sim.onAccept = (node, payload, _safe, ring) => this.onAccept(node, payload, ring);
  }

  /** The workload offers `payload` at node `nodeIndex`; a 4-byte id is put in front. Returns the id. */
  submit(nodeIndex: number, payload: Uint8Array, safe: boolean): number {
    const node = this.sim.nodes[nodeIndex];
    const id = this.nextId++;
    const bytes = new Uint8Array(ID_BYTES + payload.length);
    new DataView(bytes.buffer).setUint32(0, id);
    bytes.set(payload, ID_BYTES);
    this.messages[id] = {
      id,
      node,
      digest: { origin: node.vid, length: bytes.length, hash: fnv1a(bytes), safe },
      acceptedBy: null,
      index: -1,
      deliveredBy: new Set(),
    };
    this.submittedTotal++;
    this.sim.submit(nodeIndex, bytes, safe);
    return id;
  }

  private fail(node: SimNode, text: string): never {
    throw new Error(`checker: node ${node.index} (VID ${node.vid}) at ${this.sim.nowMs.toFixed(3)} ms: ${text}`);
  }

  private incarnation(node: SimNode, ring: TotemRing): Incarnation {
    let inc = this.incarnations.get(ring);
    if (inc === undefined) {
      inc = { node, ring, configs: [], delivered: new Set(), lastIndex: new Map(), acceptedCount: 0, inTransition: false };
      this.incarnations.set(ring, inc);
    }
    return inc;
  }

  private onAccept(node: SimNode, payload: Uint8Array, ring: TotemRing): void {
    const id = new DataView(payload.buffer, payload.byteOffset).getUint32(0);
    const m = this.messages[id];
    if (m === undefined || m.acceptedBy !== null) this.fail(node, `accepted unknown or twice-accepted message ${id}`);
    const inc = this.incarnation(node, ring);
    m.acceptedBy = ring;
    m.index = inc.acceptedCount++;
  }

  private onEvent(node: SimNode, event: RingEvent, ring: TotemRing): void {
    const inc = this.incarnation(node, ring);
    const cur = inc.configs.at(-1);
    if (event.kind === 'transitional') {
      this.dirty = true;
      if (cur === undefined) this.fail(node, 'transitional before any regular configuration');
      if (inc.inTransition) this.fail(node, 'two transitional configurations in a row');
      if (!event.members.includes(node.vid)) this.fail(node, `transitional set ${event.members} without me`);
      if (!event.members.every((v) => cur.members.includes(v))) this.fail(node, `transitional set ${event.members} not within ${cur.members}`);
      cur.transAt = cur.delivered.length;
      cur.trans = [...event.members];
      inc.inTransition = true;
      return;
    }
    if (event.kind === 'regular') {
      this.dirty = true;
      this.configurationChanges++;
      const k = key(event.membId);
      const shape = `${event.members.join(',')}|${(event.previous ?? []).map(key).join(',')}`;
      const known = this.configMembers.get(k);
      if (known === undefined) this.configMembers.set(k, shape);
      else if (known !== shape) this.fail(node, `ring id ${k} names ${shape}, elsewhere ${known}`);
      if (!event.members.includes(node.vid)) this.fail(node, `regular configuration ${k} without me`);
      const previous = event.previous ?? [];
      if (previous.length !== event.members.length) this.fail(node, `regular ${k}: previous has ${previous.length} entries`);
      const myPrevious = key(previous[event.members.indexOf(node.vid)]);
      if (cur === undefined) {
        if (myPrevious !== '0/0') this.fail(node, `first configuration ${k} says my previous ring is ${myPrevious}`);
      } else {
        if (!inc.inTransition) this.fail(node, `regular ${k} after ${cur.key} without a transitional configuration`);
        if (myPrevious !== cur.key) this.fail(node, `regular ${k} says my previous ring is ${myPrevious}, not ${cur.key}`);
        const t = event.membId.time;
        if (!(t > cur.membId.time)) this.fail(node, `ring id ${k} does not increase from ${cur.key}`);
        const fromMine = event.members.filter((_, i) => key(previous[i]) === cur.key);
        if (fromMine.join(',') !== cur.trans!.join(',')) this.fail(node, `transitional set ${cur.trans} but members from ${cur.key} are ${fromMine}`);
        cur.next = k;
      }
      inc.inTransition = false;
      inc.configs.push({
        key: k,
        membId: { ...event.membId },
        members: [...event.members],
        delivered: [],
        transAt: -1,
        trans: null,
        next: null,
        lastPlace: -1,
        lastPacket: -1,
        indexInPacket: 0,
      });
      return;
    }
    this.onDeliver(inc, cur, event);
  }

  private onDeliver(inc: Incarnation, cur: ConfigRecord | undefined, event: Extract<RingEvent, { kind: 'deliver' }>): void {
    const node = inc.node;
    if (cur === undefined) this.fail(node, 'delivery before the first regular configuration');
    if (event.packetSeq === undefined) this.fail(node, 'deliver event without packetSeq (build rings with traceDeliveries)');
    this.deliveries++;
    const payload = event.payload;
    if (payload.length < ID_BYTES) this.fail(node, `created message of ${payload.length} bytes`);
    const id = new DataView(payload.buffer, payload.byteOffset).getUint32(0);
    const m = this.messages[id];
    if (m === undefined || m.acceptedBy === null) this.fail(node, `created message: id ${id} was never accepted`);
    const d = m.digest;
    if (event.origin !== d.origin || payload.length !== d.length || fnv1a(payload) !== d.hash || event.safe !== d.safe) {
      this.fail(node, `message ${id} corrupted: origin ${event.origin} ${payload.length} B safe=${event.safe}, submitted origin ${d.origin} ${d.length} B safe=${d.safe}`);
    }
    if (inc.delivered.has(id)) this.fail(node, `message ${id} delivered twice`);
    inc.delivered.add(id);
    const last = inc.lastIndex.get(m.acceptedBy) ?? -1;
    if (m.index <= last) this.fail(node, `FIFO: message ${id} (index ${m.index} of its origin) after index ${last}`);
    inc.lastIndex.set(m.acceptedBy, m.index);

    // Total order: one place per message, increasing at every incarnation.
    const offset = (event.packetSeq - this.initialSeq) | 0;
    if (offset === cur.lastPacket) cur.indexInPacket++;
    else cur.indexInPacket = 0;
    if (offset < cur.lastPacket) this.fail(node, `total order: packet ${event.packetSeq} after ${cur.lastPacket} in ${cur.key}`);
    cur.lastPacket = offset;
    const place = `${cur.key}:${offset}:${cur.indexInPacket}`;
    const there = this.places.get(place);
    if (there === undefined) this.places.set(place, id);
    else if (there !== id) this.fail(node, `total order: message ${id} at ${place}, where another incarnation delivered ${there}`);

    if (event.safe) {
      const holders = cur.transAt < 0 ? cur.members : cur.trans!;
      for (const vid of holders) {
        const owner = this.sim.nodes.find((n) => n.vid === vid)!;
        if (!owner.incarnations.some((r) => r.holds(cur.membId, event.packetSeq!))) {
          this.fail(node, `SAFE message ${id} delivered in ${cur.key}${cur.transAt < 0 ? '' : ' after the transitional'} while daemon ${vid} lacks packet ${event.packetSeq}`);
        }
      }
      this.safeChecked++;
    }
    cur.delivered.push(id);
    m.deliveredBy.add(inc.ring);
  }

  // ---------------------------------------------------------------- after the run

  /** Virtual synchrony and nothing-lost checks over everything recorded. */
  checkFinal(): void {
    const moves = new Map<string, { inc: Incarnation; c: ConfigRecord }[]>();
    for (const inc of this.incarnations.values()) {
      for (const c of inc.configs) {
        if (c.next === null) continue;
        const k = `${c.key}->${c.next}`;
        let list = moves.get(k);
        if (list === undefined) moves.set(k, (list = []));
        list.push({ inc, c });
      }
    }
    for (const [k, list] of moves) {
      const [first, ...rest] = list;
      const all = [...first.c.delivered].sort((a, b) => a - b).join(',');
      const before = first.c.delivered.slice(0, first.c.transAt).sort((a, b) => a - b).join(',');
      for (const { inc, c } of rest) {
        if ([...c.delivered].sort((a, b) => a - b).join(',') !== all) {
          this.fail(inc.node, `virtual synchrony: moving ${k} with node ${first.inc.node.index}, delivered ${diff(c.delivered, first.c.delivered)}`);
        }
        if (c.delivered.slice(0, c.transAt).sort((a, b) => a - b).join(',') !== before) {
          this.fail(inc.node, `virtual synchrony: moving ${k} with node ${first.inc.node.index}, different messages before the transitional`);
        }
        if (c.trans!.join(',') !== first.c.trans!.join(',')) this.fail(inc.node, `moving ${k}: transitional sets differ`);
      }
    }
    const live = [...this.incarnations.values()].filter((inc) => inc.node.ring === inc.ring);
    const liveRings = new Set(live.map((inc) => inc.ring));
    for (const m of this.messages) {
      if (m === undefined || m.acceptedBy === null || !liveRings.has(m.acceptedBy)) continue;
      const origin = this.incarnations.get(m.acceptedBy)!;
      if (!m.deliveredBy.has(m.acceptedBy)) this.fail(origin.node, `message ${m.id}, accepted here, never delivered here`);
      const inC = origin.configs.find((c) => c.delivered.includes(m.id))!;
      for (const inc of live) {
        const c = inc.configs.find((x) => x.key === inC.key);
        if (c === undefined) continue;
        const mustHave = c.next === null || (c.trans !== null && c.trans.includes(origin.node.vid));
        if (mustHave && !c.delivered.includes(m.id)) {
          this.fail(inc.node, `nothing lost: message ${m.id} of live node ${origin.node.index}, delivered by it in ${inC.key}, missing here`);
        }
      }
    }
  }

  /**
   * All nodes run, in one regular configuration of every node, with nothing waiting to be sent.
   * Each ring must also still be operational in that configuration: a ring that has left it
   * (gathering after a partition it noticed) emits nothing until it installs the next one, so
   * its last event alone would call it converged, and a message submitted then may be
   * delivered in a smaller configuration (EVS allows it) instead of by every node.
   */
  converged(): boolean {
    let k: string | null = null;
    for (const node of this.sim.nodes) {
      const ring = node.ring;
      if (ring === null || node.backlog.length > 0 || ring.pendingCount() > 0 || node.pausedUntilMs > this.sim.nowMs) return false;
      const inc = this.incarnations.get(ring);
      const c = inc?.configs.at(-1);
      if (c === undefined || inc!.inTransition || c.members.length !== this.sim.nodes.length) return false;
      const status = ring.status();
      if (status.state !== 'op' || key(status.membId) !== c.key) return false;
      if (k === null) k = c.key;
      else if (c.key !== k) return false;
    }
    return true;
  }

  /** converged(), and every message a live incarnation accepted has been delivered by it. */
  settled(): boolean {
    if (!this.converged()) return false;
    for (const m of this.messages) {
      if (m === undefined) continue;
      if (m.acceptedBy === null) {
        if (m.node.ring !== null && m.node.backlog.length > 0) return false;
        continue;
      }
      if (m.node.ring === m.acceptedBy && !m.deliveredBy.has(m.acceptedBy)) return false;
    }
    return true;
  }

  /** A cheap poll for Simulator.run: re-evaluates `test` only when events arrived since the last poll. */
  poll(test: () => boolean): () => boolean {
    let seen = -1;
    let result = false;
    return () => {
      const now = this.deliveries + this.configurationChanges * 1_000_003 + (this.dirty ? 1 : 0);
      if (now !== seen || this.sim.steps % 1024 === 0) {
        seen = now;
        this.dirty = false;
        result = test();
      }
      return result;
    };
  }

  /** Every live incarnation delivered every message in `ids`. */
  deliveredEverywhere(ids: number[]): boolean {
    for (const id of ids) {
      const m = this.messages[id];
      for (const node of this.sim.nodes) if (node.ring === null || !m.deliveredBy.has(node.ring)) return false;
    }
    return true;
  }

  /** Explains which of `ids` are missing where (for failures). */
  missing(ids: number[]): string {
    const out: string[] = [];
    for (const node of this.sim.nodes) {
      const lacking = ids.filter((id) => node.ring === null || !this.messages[id].deliveredBy.has(node.ring));
      if (lacking.length > 0) out.push(`node ${node.index} lacks ${lacking.length} (e.g. ${lacking.slice(0, 5).join(', ')})`);
    }
    return out.join('; ');
  }

  /** Current configuration of each node (for failure dumps). */
  describeConfigs(): string {
    return this.sim.nodes
      .map((node) => {
        const inc = node.ring === null ? undefined : this.incarnations.get(node.ring);
        const c = inc?.configs.at(-1);
        return `node ${node.index}: ${node.ring === null ? 'down' : c === undefined ? 'no configuration' : `${c.key} [${c.members.join(',')}]${inc!.inTransition ? ' (in transition)' : ''}`}`;
      })
      .join('\n');
  }

  /** A digest of every incarnation's delivery sequence, for determinism tests. */
  orderHash(): number {
    let h = 0x811c9dc5;
    for (const inc of this.incarnations.values()) {
      for (const c of inc.configs) for (const id of c.delivered) h = Math.imul(h ^ id, 0x01000193);
      h = Math.imul(h ^ inc.configs.length, 0x01000193);
    }
    return h >>> 0;
  }

  /** Old API for simple tests: every submitted message delivered by every node, nothing waiting. */
  complete(): boolean {
    for (const node of this.sim.nodes) {
      if (node.backlog.length > 0 || node.ring === null) return false;
      if ((this.incarnations.get(node.ring)?.delivered.size ?? 0) !== this.submittedTotal) return false;
    }
    return true;
  }

  checkComplete(): void {
    for (const node of this.sim.nodes) {
      if (node.ring === null) this.fail(node, 'not running');
      if (node.backlog.length > 0) this.fail(node, `${node.backlog.length} messages never accepted`);
      const lacking = this.messages.filter((m) => m !== undefined && !m.deliveredBy.has(node.ring!));
      if (lacking.length > 0) this.fail(node, `${lacking.length} of ${this.submittedTotal} messages not delivered (e.g. ${lacking[0].id})`);
    }
    this.checkFinal();
  }
}

function diff(a: number[], b: number[]): string {
  const sa = new Set(a);
  const sb = new Set(b);
  const extra = a.filter((x) => !sb.has(x));
  const lacking = b.filter((x) => !sa.has(x));
  return `${extra.length} extra (${extra.slice(0, 5).join(', ')}), ${lacking.length} lacking (${lacking.slice(0, 5).join(', ')})`;
}
