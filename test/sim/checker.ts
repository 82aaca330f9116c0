/**
 * Safety and liveness checks over what the rings delivered (plus the two facts
 * the simulator observes: which packets carried a message, and which packets a
 * ring holds). Online checks run at each event; `checkComplete` after the heal.
 *
 *  - one total order: the n-th message is the same (origin, bytes, service) everywhere;
 *  - per-sender FIFO, no duplicates, no creation: at every node, the messages of each
 *    origin are exactly a prefix of what that origin submitted, in order;
 *  - SAFE: delivered at a node only when every node already held all its packets;
 *  - membership: one `regular` event first, with the same id everywhere;
 *  - no loss (checkComplete): everything submitted was delivered everywhere.
 */
import type { RingEvent } from '../../src/ring/types.js';
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

function same(a: MessageDigest, b: MessageDigest): boolean {
  return a.origin === b.origin && a.length === b.length && a.hash === b.hash && a.safe === b.safe;
}

function show(d: MessageDigest): string {
  return `origin ${d.origin} ${d.length} B hash ${d.hash.toString(16)}${d.safe ? ' SAFE' : ''}`;
}

export class Checker {
  private readonly submitted = new Map<number, MessageDigest[]>();
  private readonly order: MessageDigest[] = [];
  private readonly delivered = new Map<SimNode, { count: number; perOrigin: Map<number, number>; membId: string | null }>();
  private membId: string | null = null;
  submittedTotal = 0;
  safeChecked = 0;

  constructor(private readonly sim: Simulator) {
    for (const node of sim.nodes) this.delivered.set(node, { count: 0, perOrigin: new Map(), membId: null });
    sim.onEvent = (node, event) => this.onEvent(node, event);
  }

  /** The workload offers `payload` at node `nodeIndex` (order of offers = order of acceptance). */
  submit(nodeIndex: number, payload: Uint8Array, safe: boolean): void {
    const origin = this.sim.nodes[nodeIndex].vid;
    let list = this.submitted.get(origin);
    if (list === undefined) this.submitted.set(origin, (list = []));
    list.push({ origin, length: payload.length, hash: fnv1a(payload), safe });
    this.submittedTotal++;
    this.sim.submit(nodeIndex, payload, safe);
  }

  private fail(node: SimNode, text: string): never {
    throw new Error(`checker: node ${node.index} (VID ${node.vid}) at ${this.sim.nowMs.toFixed(3)} ms: ${text}`);
  }

  private onEvent(node: SimNode, event: RingEvent): void {
    const state = this.delivered.get(node)!;
    if (event.kind !== 'deliver') {
      if (event.kind !== 'regular') this.fail(node, `unexpected ${event.kind} event`);
      if (state.membId !== null) this.fail(node, 'second regular configuration');
      state.membId = `${event.membId.procId}/${event.membId.time}`;
      if (this.membId === null) this.membId = state.membId;
      if (state.membId !== this.membId) this.fail(node, `membership id ${state.membId} differs from ${this.membId}`);
      if (event.members.join(',') !== this.sim.vids.join(',')) this.fail(node, `members ${event.members}`);
      return;
    }
    if (state.membId === null) this.fail(node, 'delivery before the regular configuration');
    if (event.seq !== state.count + 1) this.fail(node, `delivery seq ${event.seq} after ${state.count}`);
    state.count++;
    const digest: MessageDigest = { origin: event.origin, length: event.payload.length, hash: fnv1a(event.payload), safe: event.safe };
    const agreed = this.order[event.seq - 1];
    if (agreed === undefined) this.order[event.seq - 1] = digest;
    else if (!same(agreed, digest)) this.fail(node, `total order: message ${event.seq} is ${show(digest)}, elsewhere ${show(agreed)}`);
    const index = state.perOrigin.get(event.origin) ?? 0;
    const expected = this.submitted.get(event.origin)?.[index];
    if (expected === undefined) this.fail(node, `created or duplicated message ${event.seq}: ${show(digest)}`);
    if (!same(expected, digest)) this.fail(node, `FIFO: message ${index} of origin ${event.origin} is ${show(digest)}, submitted ${show(expected)}`);
    state.perOrigin.set(event.origin, index + 1);
    if (event.safe) {
      const seqs = this.sim.wire.messageSeqs[event.seq - 1];
      if (seqs === undefined) this.fail(node, `SAFE message ${event.seq} has no packets on the wire`);
      for (const other of this.sim.nodes) {
        for (const seq of seqs) {
          if (other.ring === null || !other.ring.holdsSeq(seq)) {
            this.fail(node, `SAFE message ${event.seq} delivered while node ${other.index} lacks packet ${seq}`);
          }
        }
      }
      this.safeChecked++;
    }
  }

  /** Every node delivered everything submitted. */
  complete(): boolean {
    for (const node of this.sim.nodes) {
      if (node.backlog.length > 0) return false;
      if (this.delivered.get(node)!.count !== this.submittedTotal) return false;
    }
    return true;
  }

  checkComplete(): void {
    for (const node of this.sim.nodes) {
      const state = this.delivered.get(node)!;
      if (state.membId === null) this.fail(node, 'never joined the ring');
      if (node.backlog.length > 0) this.fail(node, `${node.backlog.length} messages never accepted`);
      if (state.count !== this.submittedTotal) this.fail(node, `delivered ${state.count} of ${this.submittedTotal} messages`);
      for (const [origin, list] of this.submitted) {
        if ((state.perOrigin.get(origin) ?? 0) !== list.length) this.fail(node, `origin ${origin}: ${state.perOrigin.get(origin)} of ${list.length}`);
      }
    }
  }

  /** A digest of the whole order, for determinism tests. */
  orderHash(): number {
    let h = 0x811c9dc5;
    for (const d of this.order) h = Math.imul(h ^ d.hash ^ d.origin, 0x01000193);
    return h >>> 0;
  }
}
