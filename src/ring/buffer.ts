/**
 * The receive buffer of one ring: packets by sequence number, the local and
 * ring-wide "all received up to" points, delivery order and reassembly of
 * fragmented messages. Pure data structure; TotemRing owns one per ring, and
 * keeps the previous ring's buffer through a membership change so that the old
 * ring's messages can be recovered and delivered under EVS (§7.3).
 *
 * Invariant: discardSeq ≤ deliveredSeq ≤ myAru ≤ highestSeq < discardSeq + PACKET_SLOTS,
 * and safeSeq ≤ myAru. Sequence numbers are compared only through seq.ts.
 */
import { assert } from './assert.js';
import { MESSAGE_BYTES_MAX, PACKET_SLOTS } from './limits.js';
import { type DataPacket, DataFlag, FragmentFlag, uninitializedBytes } from './packet.js';
import { seqAdd, seqDiff, seqGt, seqLt, seqLte, seqMin } from './seq.js';

interface Partial {
  chunks: Uint8Array[];
  bytes: number;
}

/**
 * Receives each complete message in order: `ordinal` is its position in this ring's
 * order (1, 2, …), `packetSeq` the packet that completed it.
 */
export type MessageSink = (ordinal: number, origin: number, safe: boolean, payload: Uint8Array, packetSeq: number) => void;

const SLOT_MASK = PACKET_SLOTS - 1;

export class PacketBuffer {
  highestSeq: number;
  myAru: number;
  deliveredSeq: number;
  discardSeq: number;
  /** Every member of the ring holds every seq ≤ safeSeq: min of the aru on my last two token visits. */
  safeSeq: number;
  prevTokenAru: number;
  /** Messages delivered from this ring so far (event `seq` is the next ordinal). */
  messageOrdinal = 0;
  private readonly slots: (DataPacket | undefined)[] = new Array(PACKET_SLOTS);
  /** Highest seq stored whose packet completes a SAFE message. */
  private lastSafePacketSeq: number;
  /** Leader's knowledge: every member has delivered the SAFE packets up to here. */
  private safeEverywhereSeq: number;
  /** 1 where the packet in the slot completes a SAFE message. */
  private readonly slotSafe = new Uint8Array(PACKET_SLOTS);
  private readonly partials = new Map<number, Partial>();

  /** `onBadFragment`: a fragment arrived out of its message and was dropped (same at every member). */
  constructor(
    readonly startSeq: number,
    private readonly onBadFragment: () => void = () => {},
  ) {
    const start = startSeq >>> 0;
    this.highestSeq = start;
    this.myAru = start;
    this.deliveredSeq = start;
    this.discardSeq = start;
    this.safeSeq = start;
    this.prevTokenAru = start;
    this.lastSafePacketSeq = start;
    this.safeEverywhereSeq = start;
  }

  /** The packet with this seq, if it is in the buffer (not yet discarded). */
  get(seq: number): DataPacket | undefined {
    const packet = this.slots[seq & SLOT_MASK];
    return packet !== undefined && packet.seq === seq ? packet : undefined;
  }

  /** Whether this daemon holds (or held and discarded, being ≤ aru) packet `seq`. */
  holds(seq: number): boolean {
    if (seqLte(seq, this.myAru)) return true;
    if (seqGt(seq, this.highestSeq)) return false;
    return this.get(seq) !== undefined;
  }

  /** A packet with this seq would be new and fits the buffer. */
  accepts(seq: number): boolean {
    return seqGt(seq, this.myAru) && seqDiff(seq, this.discardSeq) < PACKET_SLOTS && this.get(seq) === undefined;
  }

  isSafeSlot(seq: number): boolean {
    return this.slotSafe[seq & SLOT_MASK] === 1;
  }

  store(packet: DataPacket): void {
    const seq = packet.seq;
    assert(this.accepts(seq), 'stored seq is new and inside the buffer');
    const slot = seq & SLOT_MASK;
    this.slots[slot] = packet;
    let safe = 0;
    for (const f of packet.fragments) if ((f.flags & (FragmentFlag.LAST | FragmentFlag.SAFE)) === (FragmentFlag.LAST | FragmentFlag.SAFE)) safe = 1;
    this.slotSafe[slot] = safe;
    if (safe === 1 && seqGt(seq, this.lastSafePacketSeq)) this.lastSafePacketSeq = seq;
    if (seqGt(seq, this.highestSeq)) this.highestSeq = seq;
    while (seqLt(this.myAru, this.highestSeq) && this.get(seqAdd(this.myAru, 1)) !== undefined) {
      this.myAru = seqAdd(this.myAru, 1);
    }
  }

  /** A token visit showed `tokenAru`: the safe point is the lower of this and the previous visit's. */
  noteTokenAru(tokenAru: number): void {
    const candidate = seqMin(tokenAru, this.prevTokenAru);
    if (seqGt(candidate, this.safeSeq)) this.safeSeq = seqMin(candidate, this.myAru);
    this.prevTokenAru = tokenAru;
    assert(seqLte(this.safeSeq, this.myAru), 'safe point ≤ my aru');
  }

  /** Every member has delivered the SAFE packets up to `seq` (the leader saw it on two full rotations). */
  noteSafeEverywhere(seq: number): void {
    if (seqGt(seq, this.safeEverywhereSeq)) this.safeEverywhereSeq = seq;
  }

  /** A SAFE packet may still wait for delivery at some member. */
  safePendingSomewhere(): boolean {
    return seqGt(this.lastSafePacketSeq, this.safeEverywhereSeq);
  }

  /** A ring of one: everything this daemon holds, every member holds. */
  allSafe(): void {
    this.safeSeq = this.myAru;
    this.prevTokenAru = this.myAru;
  }

  /**
   * Delivers in order up to my aru, stopping before a SAFE packet beyond the safe
   * point. `recoveredOnly`: stop at the first packet that is not a recovery packet
   * (a ring in EVS recovery delivers nothing of its own before its regular configuration).
   */
  deliver(sink: MessageSink, recoveredOnly = false): number {
    let count = 0;
    while (seqLt(this.deliveredSeq, this.myAru)) {
      const seq = seqAdd(this.deliveredSeq, 1);
      const packet = this.get(seq);
      assert(packet !== undefined, 'packets up to my aru are held');
      if (recoveredOnly && !isRecovered(packet)) break;
      if (this.isSafeSlot(seq) && seqGt(seq, this.safeSeq)) break;
      this.deliverPacket(packet, sink);
      this.deliveredSeq = seq;
      count++;
    }
    this.discard();
    return count;
  }

  /** Drops what every member holds and we have delivered. */
  discard(): void {
    const discardTo = seqMin(this.deliveredSeq, this.safeSeq);
    while (seqLt(this.discardSeq, discardTo)) {
      this.discardSeq = seqAdd(this.discardSeq, 1);
      this.slots[this.discardSeq & SLOT_MASK] = undefined;
    }
  }

  /** Forget partly reassembled messages of these origins (their next fragments can never come). */
  dropPartials(keep: (origin: number) => boolean): void {
    for (const origin of [...this.partials.keys()]) if (!keep(origin)) this.partials.delete(origin);
  }

  /**
   * Reassembles the fragments of one packet; each completed message goes to `sink`.
   * A recovery packet carries a packet of another ring: it is ordered in this ring
   * (so that it reaches every member) but delivers nothing here.
   */
  deliverPacket(packet: DataPacket, sink: MessageSink): void {
    if (isRecovered(packet)) return;
    const origin = packet.origin;
    for (const f of packet.fragments) {
      const first = (f.flags & FragmentFlag.FIRST) !== 0;
      const last = (f.flags & FragmentFlag.LAST) !== 0;
      const safe = (f.flags & FragmentFlag.SAFE) !== 0;
      const partial = this.partials.get(origin);
      if (first) {
        if (partial !== undefined) {
          // The origin started a new message before finishing the last: drop the torn one (same at every member).
          this.onBadFragment();
          this.partials.delete(origin);
        }
        if (last) {
          sink(++this.messageOrdinal, origin, safe, f.payload, packet.seq);
          continue;
        }
        this.partials.set(origin, { chunks: [f.payload], bytes: f.payload.length });
        continue;
      }
      if (partial === undefined) {
        this.onBadFragment();
        continue;
      }
      partial.chunks.push(f.payload);
      partial.bytes += f.payload.length;
      if (partial.bytes > MESSAGE_BYTES_MAX) {
        this.onBadFragment();
        this.partials.delete(origin);
        continue;
      }
      if (last) {
        this.partials.delete(origin);
        sink(++this.messageOrdinal, origin, safe, concat(partial.chunks, partial.bytes), packet.seq);
      }
    }
  }

}

export function isRecovered(packet: DataPacket): boolean {
  return (packet.flags & DataFlag.RECOVERED) !== 0;
}

function concat(chunks: Uint8Array[], bytes: number): Uint8Array {
  const out = uninitializedBytes(bytes); // the chunks cover every byte
  let offset = 0;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.length;
  }
  return out;
}
