/**
 * Data packets for every peer, sent in batches. The packets of one token visit wait here
 * until flush() (the link flushes first whenever something else must leave, so nothing
 * overtakes them), then leave as GSO runs: one sendmsg per run and peer, which the kernel
 * (or the card) cuts back into the ring's datagrams. On the wire nothing changes: a peer
 * without GRO reads the same datagrams as before.
 *
 * A run is what one GSO send can carry: consecutive packets of one length, the last one
 * possibly shorter. A send that fails for want of room (EAGAIN, ENOBUFS) goes out datagram
 * by datagram through dgram instead; any other failure means this route cannot segment,
 * and batching stops for good (the link says why).
 */
import { DATAGRAM_BYTES_MAX } from '../ring/limits.js';
import type { UdpBatching } from './udp-native.js';

export interface BatchEndpoint {
  address: string;
  port: number;
}

/** Splits packets, in order, into runs one GSO send can carry. */
export function segmentRuns(packets: readonly Uint8Array[], segmentsMax: number, bytesMax = DATAGRAM_BYTES_MAX): Uint8Array[][] {
  const runs: Uint8Array[][] = [];
  let run: Uint8Array[] = [];
  let runBytes = 0;
  let closed = false;
  for (const packet of packets) {
    const fits =
      run.length > 0 && !closed && run.length < segmentsMax && runBytes + packet.length <= bytesMax && packet.length <= run[0].length;
    if (!fits) {
      if (run.length > 0) runs.push(run);
      run = [];
      runBytes = 0;
      closed = false;
    }
    // A shorter packet can only be a run's last.
    closed = run.length > 0 && packet.length < run[0].length;
    run.push(packet);
    runBytes += packet.length;
  }
  if (run.length > 0) runs.push(run);
  return runs;
}

/** Linux errno values after which a failed GSO send is worth sending again datagram by datagram. */
const ERRNO_TRANSIENT = new Set([
  1, // EPERM (a firewall: the plain sends fail too, and count)
  11, // EAGAIN: the socket's send buffer is full right now
  101, // ENETUNREACH
  105, // ENOBUFS
  111, // ECONNREFUSED (a peer's earlier ICMP)
  113, // EHOSTUNREACH
]);

export interface SegmentedSenderOptions {
  batching: UdpBatching;
  fd: number;
  targets: readonly BatchEndpoint[];
  /** One datagram through dgram (the fallback, and runs of one). */
  sendOne: (bytes: Uint8Array, target: BatchEndpoint) => void;
  /** Counts datagrams handed to the kernel by GSO sends. */
  counted: (datagrams: number, bytes: number) => void;
  /** Batching stopped for good: why. */
  onUnavailable: (reason: string) => void;
}

export class SegmentedSender {
  private readonly options: SegmentedSenderOptions;
  private pending: Uint8Array[] = [];
  private unavailable = false;
  private flushQueued = false;
  /** sendmsg calls that carried several datagrams. */
  segmentedSends = 0;

  constructor(options: SegmentedSenderOptions) {
    this.options = options;
  }

  get active(): boolean {
    return !this.unavailable;
  }

  /** Holds a packet for every target until flush(); flushed anyway once this JavaScript turn ends. */
  queue(bytes: Uint8Array): void {
    if (this.unavailable) {
      for (const target of this.options.targets) this.options.sendOne(bytes, target);
      return;
    }
    this.pending.push(bytes);
    if (this.pending.length >= this.options.batching.segmentsMax) this.flush();
    else if (!this.flushQueued) {
      // A caller that never flushes must not strand packets.
      this.flushQueued = true;
      queueMicrotask(() => {
        this.flushQueued = false;
        this.flush();
      });
    }
  }

  flush(): void {
    if (this.pending.length === 0) return;
    const packets = this.pending;
    this.pending = [];
    const { batching, fd, targets, sendOne } = this.options;
    for (const run of segmentRuns(packets, batching.segmentsMax)) {
      for (const target of targets) {
        if (run.length === 1 || this.unavailable) {
          for (const packet of run) sendOne(packet, target);
          continue;
        }
        const result = batching.sendSegments(fd, run, run[0].length, target.address, target.port);
        if (result >= 0) {
          this.segmentedSends++;
          this.options.counted(run.length, result);
          continue;
        }
        if (!ERRNO_TRANSIENT.has(-result)) {
          this.unavailable = true;
          this.options.onUnavailable(`GSO send to ${target.address}:${target.port} failed with errno ${-result}`);
        }
        for (const packet of run) sendOne(packet, target);
      }
    }
  }

  /** Forgets what is pending (the link is closing). */
  discard(): void {
    this.pending = [];
  }
}
