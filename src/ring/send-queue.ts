/**
 * The send queue of one daemon's ring: messages submitted here and not yet placed in a
 * packet, and how they are packed into datagrams when the token allows. Separate from
 * the token visit (operational.ts) because packing is about bytes, not about the ring:
 * it decides where a message is split, never when or under which seq it goes out.
 *
 * Deviation from Spread (deliberate): a message is fragmented wherever a datagram fills
 * up (not only when it is larger than a datagram), so 1000-byte messages pack ~1.4 per
 * 1472-byte datagram. A message whose first fragments went out in a ring that then broke
 * is sent again whole in the next ring (its torn start is never delivered).
 */
import { type DataPacketWriter, FragmentFlag } from './packet.js';

/** Fragments shorter than this are not split off the head of a message; the next packet takes it whole. */
const SPLIT_BYTES_MIN = 64;
/** Consumed entries tolerated at the head before the arrays are compacted. */
const QUEUE_COMPACT_AFTER = 1024;
const EMPTY = new Uint8Array(0);

/** Parallel arrays with a head index (no shift()), bounded in messages and bytes. */
export class SendQueue {
  private payloads: Uint8Array[] = [];
  private safeFlags: boolean[] = [];
  private head = 0;
  private bytes = 0;
  /** Bytes of the head message already placed in packets of the current ring. */
  private headOffset = 0;

  constructor(
    private readonly messagesMax: number,
    private readonly bytesMax: number,
  ) {}

  /** Messages waiting (drives the client read water mark). */
  get length(): number {
    return this.payloads.length - this.head;
  }

  hasQueued(): boolean {
    return this.head < this.payloads.length;
  }

  /** True when some queued message asks for SAFE delivery. */
  hasSafeQueued(): boolean {
    for (let i = this.head; i < this.safeFlags.length; i++) if (this.safeFlags[i]) return true;
    return false;
  }

  /** Queues a message, or returns false (queuing nothing) at the bounds: back-pressure. */
  offer(payload: Uint8Array, safe: boolean): boolean {
    const queued = this.length;
    if (queued >= this.messagesMax) return false;
    if (queued > 0 && this.bytes + payload.length > this.bytesMax) return false;
    this.payloads.push(payload);
    this.safeFlags.push(safe);
    this.bytes += payload.length;
    return true;
  }

  /** The ring broke: the head message's fragments sent there are never completed, so it starts again whole. */
  restartHead(): void {
    this.headOffset = 0;
  }

  /** Moves queued messages into the writer's open packet until it is full or the queue is empty. */
  fillPacket(writer: DataPacketWriter): void {
    while (this.hasQueued()) {
      const payload = this.payloads[this.head];
      const safe = this.safeFlags[this.head];
      const remaining = payload.length - this.headOffset;
      const room = writer.room();
      // Split only into pieces worth a fragment header; an empty packet always has room enough.
      if (remaining > room && room < SPLIT_BYTES_MIN) break;
      // A message that would fit a packet of its own starts the next one instead of being split:
      // every receiver would otherwise copy its pieces together.
      if (remaining > room && this.headOffset === 0 && writer.fragments > 0 && remaining <= writer.emptyRoom) break;
      const take = Math.min(remaining, room);
      const last = take === remaining;
      const flags = (this.headOffset === 0 ? FragmentFlag.FIRST : 0) | (last ? FragmentFlag.LAST : 0) | (safe ? FragmentFlag.SAFE : 0);
      writer.append(flags, payload, this.headOffset, take);
      if (last) this.pop();
      else this.headOffset += take;
    }
  }

  private pop(): void {
    const payload = this.payloads[this.head];
    this.bytes -= payload.length;
    this.payloads[this.head] = EMPTY;
    this.head++;
    this.headOffset = 0;
    if (this.head === this.payloads.length) {
      this.payloads = [];
      this.safeFlags = [];
      this.head = 0;
    } else if (this.head >= QUEUE_COMPACT_AFTER && this.head * 2 >= this.payloads.length) {
      this.payloads = this.payloads.slice(this.head);
      this.safeFlags = this.safeFlags.slice(this.head);
      this.head = 0;
    }
  }
}
