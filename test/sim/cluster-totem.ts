/**
 * TotemRing for the whole-daemon simulator: every daemon's real ring, with the datagrams
 * its DaemonNode hands out carried by a seeded network (delay, jitter, loss, duplicates)
 * that partitions cut: a datagram between daemons on different islands is dropped when
 * sent. The simulator passes each arriving datagram to the node and calls its tick at
 * the node's own deadlines, so membership (gather, commit, EVS recovery, merges) is the
 * ring's own.
 */
import type { OutboundPacket, Ring } from '../../src/ring/types.js';
import { type TotemOptions, TotemRing } from '../../src/ring/totem.js';
import type { Scheduler } from './cluster-evs-ring.js';
import { Prng } from './prng.js';

export interface TotemFabricOptions {
  loss: number;
  duplicate: number;
  delayMs: number;
  jitterMs: number;
  /** Ring options besides identity (timeouts, windows, datagram size …). */
  ring: Partial<Omit<TotemOptions, 'myVid' | 'members' | 'nowMs' | 'configHash'>>;
}

export class TotemFabric {
  readonly options: TotemFabricOptions;
  private readonly vids: number[];
  private readonly scheduler: Scheduler;
  private readonly prng: Prng;
  private readonly configHash: number;
  private readonly rings = new Map<number, TotemRing>();
  /** Each daemon's latest life, running or crashed: what it keeps across a restart comes from there. */
  private readonly lastLife = new Map<number, { ring: TotemRing; lives: number }>();
  private readonly island = new Map<number, number>();
  /** Hands an arriving datagram to daemon `vid`'s node. */
  onPacket: ((vid: number, bytes: Uint8Array) => void) | null = null;
  datagrams = 0;
  dropped = 0;

  constructor(vids: number[], configHash: number, scheduler: Scheduler, prng: Prng, options: TotemFabricOptions) {
    this.vids = vids;
    this.configHash = configHash;
    this.scheduler = scheduler;
    this.prng = prng;
    this.options = options;
    for (const vid of vids) this.island.set(vid, 0);
  }

  start(vid: number, nowMs: number): Ring {
    // What a daemon keeps across restarts (src/daemon/ring-identity.ts): a count of its lives and
    // the highest ring time it formed.
    const previous = this.lastLife.get(vid);
    const lives = (previous?.lives ?? 0) + 1;
    const kept = { incarnation: lives, ringTimeFloor: previous?.ring.formedRingTime() ?? 0 };
    const ring = new TotemRing({ ...kept, ...this.options.ring, myVid: vid, members: this.vids, configHash: this.configHash, nowMs });
    this.rings.set(vid, ring);
    this.lastLife.set(vid, { ring, lives });
    return ring;
  }

  crash(vid: number): void {
    this.rings.delete(vid);
  }

  setIslands(islands: Map<number, number>): void {
    for (const [vid, island] of islands) this.island.set(vid, island);
  }

  heal(): void {
    for (const vid of this.vids) this.island.set(vid, 0);
  }

  /** Datagrams a node handed out. */
  send(from: number, packets: OutboundPacket[]): void {
    for (const packet of packets) {
      const targets = packet.to === 'all' ? this.vids.filter((vid) => vid !== from) : [packet.to];
      for (const to of targets) this.transmit(from, to, packet.bytes);
    }
  }

  private transmit(from: number, to: number, bytes: Uint8Array): void {
    this.datagrams += 1;
    const o = this.options;
    if (this.island.get(from) !== this.island.get(to) || (o.loss > 0 && this.prng.chance(o.loss))) {
      this.dropped += 1;
      return;
    }
    const copies = o.duplicate > 0 && this.prng.chance(o.duplicate) ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      const at = this.scheduler.nowMs + o.delayMs + (o.jitterMs > 0 ? this.prng.float() * o.jitterMs : 0);
      this.scheduler.at(at, () => {
        if (this.rings.has(to)) this.onPacket?.(to, bytes);
      });
    }
  }

  /** Each island's live daemons form one ring, agree on it, and hold no unordered or undelivered message. */
  settled(): boolean {
    const byIsland = new Map<number, number[]>();
    for (const vid of this.vids) {
      if (!this.rings.has(vid)) continue;
      const island = this.island.get(vid) as number;
      byIsland.set(island, [...(byIsland.get(island) ?? []), vid]);
    }
    for (const members of byIsland.values()) {
      let first: ReturnType<TotemRing['status']> | null = null;
      for (const vid of members) {
        const ring = this.rings.get(vid) as TotemRing;
        const status = ring.status();
        if (status.state !== 'op' || ring.pendingCount() > 0) return false;
        if (status.members.length !== members.length || status.members.some((member, i) => member !== members[i])) return false;
        if (status.aru !== status.highestSeq) return false;
        if (first === null) first = status;
        else if (status.membId.procId !== first.membId.procId || status.membId.time !== first.membId.time || status.highestSeq !== first.highestSeq) return false;
      }
    }
    return true;
  }

  describe(): string {
    const o = this.options;
    const r = o.ring;
    return (
      `totem loss=${o.loss} dup=${o.duplicate} delay=${o.delayMs}+${o.jitterMs}ms ${r.acceleratedRing ? `accelerated(${r.acceleratedWindow})` : 'original'} ` +
      `PW=${r.personalWindow} W=${r.window} datagram=${r.datagramBytes} queue=${r.sendQueueMessagesMax}`
    );
  }
}
