/**
 * A ring of exactly one daemon: every submitted message is ordered at once.
 * It is the degenerate case of the token ring (the token never leaves this
 * daemon), kept as a fast path: no packets, no timers, sequence numbers only.
 */
import type { MembershipId, Ring, RingEvent, RingReady, RingStatus } from './types.js';
import { DATAGRAM_BYTES_DEFAULT } from './limits.js';
import { ringTimeAfter } from './ring-id.js';

export class SoloRing implements Ring {
  readonly myVid: number;
  private readonly membId: MembershipId;
  private seq = 0;
  private events: RingEvent[] = [];
  private delivered = 0;

  /** `ringTimeFloor`: as TotemOptions.ringTimeFloor (a restarted daemon's one ring id must be new too). */
  constructor(myVid: number, nowMs: number, ringTimeFloor = 0) {
    this.myVid = myVid;
    this.membId = { procId: myVid, time: ringTimeAfter(nowMs, ringTimeFloor) };
    this.events.push({ kind: 'regular', membId: this.membId, members: [myVid] });
  }

  submit(payload: Uint8Array, safe: boolean): boolean {
    this.seq += 1;
    this.events.push({ kind: 'deliver', seq: this.seq, origin: this.myVid, safe, payload });
    return true;
  }

  receive(_bytes: Uint8Array, _nowMs: number): void {
    // A ring of one has no peers; stray datagrams are ignored.
  }

  tick(_nowMs: number): void {}

  ready(): RingReady {
    const events = this.events;
    this.events = [];
    this.delivered += events.length;
    return { packets: [], events };
  }

  formedRingTime(): number {
    return this.membId.time;
  }

  nextDeadlineMs(): number | null {
    return null;
  }

  pendingCount(): number {
    return 0;
  }

  status(): RingStatus {
    return {
      state: 'op',
      myVid: this.myVid,
      leaderVid: this.myVid,
      membId: this.membId,
      members: [this.myVid],
      aru: this.seq,
      myAru: this.seq,
      highestSeq: this.seq,
      packetsSent: this.seq,
      packetsReceived: 0,
      packetsDelivered: this.seq,
      retransmissions: 0,
      tokenHurry: 0,
      tokenRounds: 0,
      membershipChanges: 1,
      window: 160,
      personalWindow: 20,
      acceleratedRing: false,
      acceleratedWindow: 15,
      datagramBytes: DATAGRAM_BYTES_DEFAULT, // sends no datagrams; what a ring would start from
    };
  }
}
