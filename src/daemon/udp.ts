/**
 * The ring over real UDP sockets. Two layers, use whichever fits:
 *
 * UdpRingLink: sockets only.
 *   const link = new UdpRingLink({ config, myVid });
 *   link.onDatagram((bytes, nowMs) => ring.receive(bytes, nowMs));   // or DaemonNode.ringPacket
 *   link.onMonitorDatagram((bytes, from) => monitor.handle(bytes, from)); // spmonitor packets on port P
 *   await link.start();               // binds <my address>:<port> (data) and :<port+1> (token)
 *   link.send(packet);                // an OutboundPacket from ring.ready()
 *   link.flush();                     // after the packets of one ready(): batched sends leave
 *   await link.close();
 *   link.stats();
 *
 * UdpRingTransport: a Ring driven end to end (link + one timer + flush).
 *   const t = new UdpRingTransport({ config, myVid, ring });
 *   t.onEvents((events) => ...);      // ring events in order; register before start()
 *   await t.start();
 *   t.submit(payload, safe);          // ring.submit + a flush on the next turn; false = back-pressure
 *   t.flush();                        // send ready().packets, hand out events, re-arm the timer
 *   await t.close();
 *
 * Rules kept here (§11.1): data, HELLO, HURRY and acks go to a daemon's segment
 * port, tokens to port + 1, and so do the membership packets (COMMIT, and JOIN when
 * 'all' is sent by unicast), which must not queue behind data. By default 'all' is sent as one unicast per other
 * daemon (works on any network, and lets 127.0.0.1/.2/.3 share a port on one
 * host); `mode: 'segment'` sends 'all' once to our segment's first address
 * (broadcast or multicast; also bound, with reuseAddr, to receive it) and by
 * unicast to daemons of other segments. Tested with loopback broadcast only;
 * multicast joins the group on our configured address. A datagram is dropped
 * unless its source address is the configured address of the VID in its
 * header. Token datagrams wait for the next event-loop turn, and a few more
 * while data datagrams keep arriving, so data sent before the token is read
 * first: Spread's priority of the broadcast socket over the token socket (§11.3),
 * approximately. With the native addon the link can see that no data datagram waits
 * (FIONREAD), and then acts on the token in the turn it is read: ahead of the group-layer
 * work and client writes for the data read just before it, which would otherwise run
 * first and hold the token (and so the whole ring) up.
 *
 * Monitor packets (spmonitor, `tspread monitor`, §9) share the data port: a datagram
 * on the data socket that `isMonitorDatagram` accepts goes to `onMonitorDatagram`
 * before the source-address check (the monitor is not a ring member). Ring packets
 * start with our magic and are never mistaken for one. `setPartition` (the monitor's
 * PARTITION command) drops ring datagrams from daemons in another component.
 *
 * Batching (udp-batch.ts, with the optional native addon, udp-native.ts): data packets for
 * every peer wait until flush() (or until anything else is sent, so that nothing overtakes
 * them) and leave as GSO sends, one sendmsg per run of packets and peer; the data socket
 * asks for GRO, so a read may return several datagrams back to back, which are split by
 * their own headers (packetLength). Without the addon each packet is one dgram send, and
 * `batching` says why.
 *
 * Sealing (`sealer`, src/security/ring-seal.ts, with RingKeyFile): every packet is sealed
 * just before it leaves (once for all its targets; a unicast to its receiver) and every
 * datagram is opened just after the source check, GRO reads split by the sealed length.
 * Anything not sealed under an accepted key, replayed or forged is dropped and counted
 * (sealStats) and reported to `onRefused`; the ring sees only opened packets.
 *
 * The clock is monotonic but wall-anchored (membership ids carry seconds).
 */
import dgram from 'node:dgram';
import dns from 'node:dns';
import { readFileSync } from 'node:fs';
import { isIP, isIPv6 } from 'node:net';
import { networkInterfaces } from 'node:os';
import { isMulticast, parseIpAddress } from '../config/address.js';
import type { SpreadConfig } from '../config/types.js';
import { isMonitorDatagram } from '../management/monitor-protocol.js';
import { PACKET_MAGIC, PacketType, packetLength, peekSender, peekType } from '../ring/packet.js';
import { isSealed, sealedLength, sealedSender, type OpenRefusal, type RingSealer } from '../security/ring-seal.js';
import type { OutboundPacket, Ring, RingEvent } from '../ring/types.js';
import { SegmentedSender } from './udp-batch.js';
import { loadUdpBatching, socketDescriptor, type UdpBatching } from './udp-native.js';

/** Kernel socket buffers we ask for (the kernel caps them at net.core.[rw]mem_max). */
const SOCKET_BUFFER_BYTES = 4 * 1024 * 1024;
/**
 * The receive buffer our sockets get: what we ask for, capped by the kernel at
 * net.core.rmem_max. Null when that cannot be read (not Linux).
 */
export function receiveBufferBytesGranted(): number | null {
  try {
    const max = Number(readFileSync('/proc/sys/net/core/rmem_max', 'utf8').trim());
    return Number.isFinite(max) && max > 0 ? Math.min(max, SOCKET_BUFFER_BYTES) : null;
  } catch {
    return null;
  }
}

/** MTU of the interface that holds `address` (Linux sysfs), or null when unknown. */
export function interfaceMtuBytes(address: string): number | null {
  for (const [name, entries] of Object.entries(networkInterfaces())) {
    if (!(entries ?? []).some((entry) => entry.address === address)) continue;
    try {
      const mtu = Number(readFileSync(`/sys/class/net/${name}/mtu`, 'utf8').trim());
      return Number.isInteger(mtu) && mtu > 0 ? mtu : null;
    } catch {
      return null;
    }
  }
  return null;
}

/**
 * Event-loop turns a token may wait while data datagrams keep arriving. libuv reads
 * at most 32 datagrams per socket per turn, so a burst sent just before the token
 * can need several turns; the bound keeps a busy network from starving the token.
 */
const TOKEN_DEFERRAL_TURNS_MAX = 8;
/**
 * Sends carry a completion callback only every this many datagrams (and always for the
 * token port). Node's dgram reports a send error only through the callback, and each
 * callback costs a nextTick; a persistent error (EPERM on a firewalled host, no route)
 * still shows in `sendErrors`, which counts the sampled sends' errors.
 */
const SEND_ERROR_SAMPLE_EVERY = 32;

/**
 * dgram's address lookup for our sockets. Every address we send to is a configured IP
 * literal: answer at once instead of through dns.lookup and a nextTick per datagram
 * (the send then happens inside socket.send). Anything else goes to dns.lookup.
 */
function literalLookup(
  hostname: string,
  options: dns.LookupOneOptions | number,
  callback: (error: NodeJS.ErrnoException | null, address: string, family: number) => void,
): void {
  const family = isIP(hostname);
  if (family !== 0) callback(null, hostname, family);
  else dns.lookup(hostname, options as dns.LookupOneOptions, callback);
}

interface Endpoint {
  address: string;
  port: number;
}

export interface UdpLinkOptions {
  config: SpreadConfig;
  myVid: number;
  /** 'unicast' (default): 'all' = one datagram per other daemon. 'segment': one per segment address. */
  mode?: 'unicast' | 'segment';
  clock?: () => number;
  /** The native batching addon; default: loaded if built (loadUdpBatching). null: one send per datagram. */
  batching?: UdpBatching | null;
  /** Batching stopped while running (a GSO send failed in a way that will not pass): why. */
  onBatchingOff?: (reason: string) => void;
  /**
   * Seals every ring datagram sent and opens every one received (src/security/ring-seal.ts);
   * then anything not sealed under an accepted key, replayed or forged is dropped and counted.
   */
  sealer?: RingSealer | null;
  /** A datagram refused by the sealer: why, and where it came from (the daemon logs, rate-limited). */
  onRefused?: (why: OpenRefusal | 'unsealed', from: { address: string; port: number }) => void;
}

/** Whether sends and reads are batched, and if not why (for the daemon's log and the tests). */
export interface UdpBatchingStatus {
  gsoSends: boolean;
  groReads: boolean;
  /** Why something is off; null when both are on. */
  reason: string | null;
}

export interface UdpLinkStats {
  datagramsIn: number;
  datagramsOut: number;
  bytesIn: number;
  bytesOut: number;
  /** Dropped: not our header, unknown VID, or source address not the VID's configured one. */
  droppedSource: number;
  /** Dropped: the sender is in another component of a monitor-imposed partition. */
  droppedPartition: number;
  /** Monitor datagrams handed to onMonitorDatagram. */
  monitorDatagrams: number;
  /** Send errors seen: every token-port send, and one data send in SEND_ERROR_SAMPLE_EVERY. */
  sendErrors: number;
  /** sendmsg calls that carried several datagrams (GSO). */
  segmentedSends: number;
  /** Reads that returned several datagrams (GRO). */
  coalescedReads: number;
}

const wallOffsetMs = Date.now() - performance.now();
/** Monotonic milliseconds, anchored at the wall clock when this module loaded. */
export function monotonicWallClock(): number {
  return wallOffsetMs + performance.now();
}

export class UdpRingLink {
  readonly me: Endpoint;
  private readonly peers = new Map<number, Endpoint>();
  private readonly allTargets: Endpoint[];
  private readonly clock: () => number;
  private readonly family: 'udp4' | 'udp6';
  private dataSocket: dgram.Socket | null = null;
  private tokenSocket: dgram.Socket | null = null;
  /** 'segment' mode: receives what peers send to the segment's broadcast or multicast address. */
  private segmentSocket: dgram.Socket | null = null;
  private readonly segmentAddress: string | null = null;
  private readonly myVid: number;
  private listener: (bytes: Uint8Array, nowMs: number, tokenPort: boolean) => void = () => {};
  private monitorListener: ((bytes: Uint8Array, from: { address: string; port: number }) => void) | null = null;
  /** VIDs whose ring datagrams are dropped (another partition component); null = no partition. */
  private partitioned: Set<number> | null = null;
  private readonly pendingTokens: Uint8Array[] = [];
  private tokenDrainScheduled = false;
  private tokenDeferrals = 0;
  private dataSinceTokenCheck = 0;
  private readonly counters: UdpLinkStats = {
    datagramsIn: 0,
    datagramsOut: 0,
    bytesIn: 0,
    bytesOut: 0,
    droppedSource: 0,
    droppedPartition: 0,
    monitorDatagrams: 0,
    sendErrors: 0,
    segmentedSends: 0,
    coalescedReads: 0,
  };
  private readonly batchingAddon: UdpBatching | null;
  private batchingReason: string | null;
  private segmented: SegmentedSender | null = null;
  private groReads = false;
  /** Descriptors of the sockets data arrives on (for the FIONREAD look); empty without the addon. */
  private dataDescriptors: number[] = [];
  private readonly onBatchingOff: (reason: string) => void;
  private readonly sealer: RingSealer | null;
  private readonly onRefused: NonNullable<UdpLinkOptions['onRefused']>;
  /** Unsealed ring datagrams dropped because the ring is sealed. */
  private unsealedDropped = 0;
  private lastSendError: Error | null = null;
  private sendsUntilSample = 0;
  private readonly afterSampledSend = (error: Error | null): void => {
    if (error) this.sendFailed(error);
  };

  constructor(options: UdpLinkOptions) {
    const { config, myVid } = options;
    this.clock = options.clock ?? monotonicWallClock;
    if (options.batching === undefined) {
      const loaded = loadUdpBatching();
      this.batchingAddon = loaded.batching;
      this.batchingReason = loaded.reason;
    } else {
      this.batchingAddon = options.batching;
      this.batchingReason = options.batching === null ? 'batching not requested' : null;
    }
    this.onBatchingOff = options.onBatchingOff ?? (() => {});
    this.sealer = options.sealer ?? null;
    this.onRefused = options.onRefused ?? (() => {});
    let me: Endpoint | null = null;
    for (const d of config.daemons) {
      const endpoint = { address: d.address, port: config.segments[d.segmentIndex].port };
      if (d.vid === myVid) me = endpoint;
      else this.peers.set(d.vid, endpoint);
    }
    if (me === null) throw new Error(`VID ${myVid} is not a configured daemon`);
    this.me = me;
    this.family = isIPv6(me.address) ? 'udp6' : 'udp4';
    this.myVid = myVid;
    if (options.mode === 'segment') {
      const mySegment = config.daemons.find((d) => d.vid === myVid)!.segmentIndex;
      this.segmentAddress = config.segments[mySegment].addresses[0] ?? null;
      this.allTargets = config.segments.flatMap((segment, index) => {
        const first = segment.addresses[0];
        // Our own segment via its broadcast/multicast address; other segments by unicast to each daemon.
        if (index === mySegment && first !== undefined) return [{ address: first, port: segment.port }];
        return segment.daemons.filter((d) => d.vid !== myVid).map((d) => ({ address: d.address, port: segment.port }));
      });
    } else {
      this.allTargets = [...this.peers.values()];
    }
  }

  /**
   * Ring datagrams that passed the source check. `tokenPort`: it came to port + 1 (token,
   * membership) after the data that preceded it was read; the daemon acts on it at once.
   */
  onDatagram(listener: (bytes: Uint8Array, nowMs: number, tokenPort: boolean) => void): void {
    this.listener = listener;
  }

  /** Monitor packets arriving on the data port (checked before the source-address rule). */
  onMonitorDatagram(listener: (bytes: Uint8Array, from: { address: string; port: number }) => void): void {
    this.monitorListener = listener;
  }

  /** Drop ring datagrams from these VIDs (a monitor partition); empty or null lifts it. */
  setPartition(blocked: Iterable<number> | null): void {
    const set = blocked === null ? null : new Set(blocked);
    this.partitioned = set === null || set.size === 0 ? null : set;
  }

  async start(): Promise<void> {
    const bound: dgram.Socket[] = [];
    try {
      bound.push(
        await this.bind(this.me.address, this.me.port, false, (bytes, from) => {
          // Not our magic and a monitor header: spmonitor's (isMonitorDatagram is false for ring packets).
          if (this.monitorListener !== null && ((bytes[0] << 8) | bytes[1]) !== PACKET_MAGIC && !isSealed(bytes) && isMonitorDatagram(bytes)) {
            this.counters.monitorDatagrams++;
            this.monitorListener(bytes, from);
            return;
          }
          this.accept(bytes, from, false);
        }),
      );
      bound.push(await this.bind(this.me.address, this.me.port + 1, false, (bytes, from) => this.accept(bytes, from, true)));
      if (this.segmentAddress !== null) {
        // Every daemon of the segment on this host binds the shared address: reuseAddr.
        const socket = await this.bind(this.segmentAddress, this.me.port, true, (bytes, from) => {
          const sender = this.sealer === null ? peekSender(bytes) : sealedSender(bytes);
          if (sender !== this.myVid) this.accept(bytes, from, false); // our own broadcast, looped back
        });
        bound.push(socket);
        const segment = parseIpAddress(this.segmentAddress);
        if (segment !== null && isMulticast(segment)) {
          socket.addMembership(this.segmentAddress, this.me.address);
          bound[0].setMulticastInterface(this.me.address);
          bound[0].setMulticastLoopback(true);
        }
      }
    } catch (error) {
      for (const socket of bound) socket.close();
      throw error;
    }
    [this.dataSocket, this.tokenSocket] = bound;
    this.segmentSocket = bound[2] ?? null;
    this.startBatching();
  }

  /** GSO sends and GRO reads on the data socket(s), when the addon is there and the kernel agrees. */
  private startBatching(): void {
    const addon = this.batchingAddon;
    const fd = this.dataSocket === null ? null : socketDescriptor(this.dataSocket);
    if (addon === null) return;
    if (fd === null) {
      this.batchingReason = 'no descriptor for the data socket';
      return;
    }
    const reading = [this.dataSocket, this.segmentSocket].flatMap((socket) => (socket === null ? [] : [socketDescriptor(socket)]));
    if (reading.every((descriptor) => descriptor !== null && addon.nextDatagramBytes(descriptor) >= 0)) this.dataDescriptors = reading as number[];
    const refused = reading.map((descriptor) => (descriptor === null ? -1 : addon.enableGro(descriptor))).find((result) => result < 0);
    this.groReads = refused === undefined;
    if (!this.groReads) this.batchingReason = `UDP_GRO refused (errno ${-(refused ?? 0)})`;
    this.segmented = new SegmentedSender({
      batching: addon,
      fd,
      targets: this.allTargets,
      sendOne: (bytes, target) => this.sendTo(this.dataSocket!, bytes, target, false),
      counted: (datagrams, bytes) => {
        this.counters.datagramsOut += datagrams;
        this.counters.bytesOut += bytes;
        this.counters.segmentedSends++;
      },
      onUnavailable: (reason) => {
        this.batchingReason = reason;
        this.onBatchingOff(reason);
      },
    });
  }

  batching(): UdpBatchingStatus {
    return { gsoSends: this.segmented?.active ?? false, groReads: this.groReads, reason: this.batchingReason };
  }

  private bind(address: string, port: number, reuseAddr: boolean, onMessage: (bytes: Buffer, from: dgram.RemoteInfo) => void): Promise<dgram.Socket> {
    return new Promise((resolve, reject) => {
      const socket = dgram.createSocket({ type: this.family, reuseAddr, lookup: literalLookup });
      const onError = (error: Error): void => {
        socket.close();
        reject(error);
      };
      socket.once('error', onError);
      socket.bind(port, address, () => {
        socket.off('error', onError);
        socket.on('error', (error) => this.sendFailed(error));
        try {
          socket.setRecvBufferSize(SOCKET_BUFFER_BYTES);
          socket.setSendBufferSize(SOCKET_BUFFER_BYTES);
          socket.setBroadcast(true);
        } catch {
          // Best effort: the kernel default still works, only with more loss under bursts.
        }
        socket.on('message', onMessage);
        resolve(socket);
      });
    });
  }

  private accept(bytes: Buffer, from: dgram.RemoteInfo, token: boolean): void {
    this.counters.bytesIn += bytes.length;
    const sealer = this.sealer;
    let sender: number | null;
    if (sealer === null) {
      // peekSender without a DataView per datagram.
      sender = peekType(bytes) === null ? null : ((bytes[4] << 24) | (bytes[5] << 16) | (bytes[6] << 8) | bytes[7]) >>> 0;
    } else {
      sender = sealedSender(bytes);
      if (sender === null && peekType(bytes) !== null) {
        // A ring packet in the clear (a daemon without the key file): refused like a forgery.
        this.unsealedDropped++;
        this.onRefused('unsealed', from);
        return;
      }
    }
    const expected = sender === null ? undefined : this.peers.get(sender);
    if (expected === undefined || expected.address !== from.address) {
      this.counters.droppedSource++;
      return;
    }
    if (this.partitioned !== null && this.partitioned.has(sender!)) {
      this.counters.droppedPartition++;
      return;
    }
    const nowMs = this.clock();
    const lengthAt = sealer === null ? packetLength : sealedLength;
    const first = token || !this.groReads ? bytes.length : (lengthAt(bytes, 0) ?? bytes.length);
    if (first >= bytes.length) {
      this.open(bytes, token, nowMs, from);
      return;
    }
    // A GRO read: datagrams of one sender back to back, each as long as its header says.
    this.counters.coalescedReads++;
    for (let offset = 0, length = first; offset < bytes.length; offset += length) {
      if (offset > 0) length = lengthAt(bytes, offset) ?? bytes.length - offset;
      this.open(bytes.subarray(offset, offset + length), false, nowMs, from);
    }
  }

  /** Unseals a datagram when the ring is sealed (a refusal is counted and dropped), then takes it. */
  private open(bytes: Uint8Array, token: boolean, nowMs: number, from: dgram.RemoteInfo): void {
    if (this.sealer === null) {
      this.take(bytes, token, nowMs);
      return;
    }
    const opened = this.sealer.open(bytes, token);
    if (opened.ok) this.take(opened.packet, token, nowMs);
    else this.onRefused(opened.why, from);
  }

  /** One ring packet that passed the checks. */
  private take(bytes: Uint8Array, token: boolean, nowMs: number): void {
    this.counters.datagramsIn++;
    if (!token) {
      this.dataSinceTokenCheck++;
      this.listener(bytes, nowMs, false);
      return;
    }
    if (!this.tokenDrainScheduled && this.noDataWaiting()) {
      // Everything sent before the token has been read: act on it now.
      this.listener(bytes, nowMs, true);
      return;
    }
    this.pendingTokens.push(bytes);
    if (!this.tokenDrainScheduled) {
      this.tokenDrainScheduled = true;
      this.dataSinceTokenCheck = 0;
      this.tokenDeferrals = 0;
      setImmediate(() => this.drainTokens());
    }
  }

  /** True when the addon shows no datagram waiting on any data socket (false without it: unknown). */
  private noDataWaiting(): boolean {
    const addon = this.batchingAddon;
    if (addon === null || this.dataDescriptors.length === 0) return false;
    for (const descriptor of this.dataDescriptors) if (addon.nextDatagramBytes(descriptor) !== 0) return false;
    return true;
  }

  private drainTokens(): void {
    // With the addon, what is waiting in the socket says whether to wait; without it, what arrived since the last look.
    const dataArriving = this.dataDescriptors.length > 0 ? !this.noDataWaiting() : this.dataSinceTokenCheck > 0;
    if (dataArriving && this.tokenDeferrals < TOKEN_DEFERRAL_TURNS_MAX && this.dataSocket !== null) {
      // Data still arriving: let the next poll phase read it before the token.
      this.dataSinceTokenCheck = 0;
      this.tokenDeferrals++;
      setImmediate(() => this.drainTokens());
      return;
    }
    this.tokenDrainScheduled = false;
    // Bounded by what arrived before this turn; later arrivals schedule another drain.
    const count = this.pendingTokens.length;
    for (let i = 0; i < count && this.dataSocket !== null; i++) this.listener(this.pendingTokens.shift()!, this.clock(), true);
  }

  send(packet: OutboundPacket): void {
    const socket = this.dataSocket;
    if (socket === null) return;
    // The token port also carries membership packets (unicast only: the segment address is not
    // bound on port + 1), so that they do not wait behind a receive buffer full of data.
    const type = peekType(packet.bytes);
    const token = type === PacketType.TOKEN || type === PacketType.COMMIT || (type === PacketType.JOIN && this.segmentAddress === null);
    // Sealed once, sent to every target: each copy is the same datagram, one nonce. A unicast is sealed to its receiver.
    const bytes = this.sealer === null ? packet.bytes : this.sealer.seal(packet.bytes, token, packet.to === 'all' ? null : packet.to);
    if (packet.to === 'all' && !token && this.segmented !== null) {
      this.segmented.queue(bytes);
      return;
    }
    // Whatever was queued leaves first: the token must not overtake its visit's data.
    this.segmented?.flush();
    if (packet.to === 'all') {
      for (const target of this.allTargets) this.sendTo(socket, bytes, target, token);
      return;
    }
    const target = this.peers.get(packet.to);
    if (target === undefined) throw new Error(`packet for unknown VID ${packet.to}`);
    this.sendTo(socket, bytes, target, token);
  }

  /** Sends what send() queued (the end of one batch of ring packets). */
  flush(): void {
    this.segmented?.flush();
  }

  private sendTo(socket: dgram.Socket, bytes: Uint8Array, target: Endpoint, token: boolean): void {
    this.counters.datagramsOut++;
    this.counters.bytesOut += bytes.length;
    if (token || --this.sendsUntilSample <= 0) {
      if (!token) this.sendsUntilSample = SEND_ERROR_SAMPLE_EVERY;
      socket.send(bytes, token ? target.port + 1 : target.port, target.address, this.afterSampledSend);
    } else {
      socket.send(bytes, target.port, target.address);
    }
  }

  private sendFailed(error: Error): void {
    // UDP is lossy anyway (ENOBUFS, EPERM on a firewalled host): the ring retransmits.
    this.counters.sendErrors++;
    this.lastSendError = error;
  }

  stats(): UdpLinkStats & { lastSendError: string | null } {
    return { ...this.counters, lastSendError: this.lastSendError?.message ?? null };
  }

  /** The sealer's counts (null when the ring is not sealed), with unsealed ring packets dropped. */
  sealStats(): (ReturnType<RingSealer['stats']> & { rejectedUnsealed: number }) | null {
    return this.sealer === null ? null : { ...this.sealer.stats(), rejectedUnsealed: this.unsealedDropped };
  }

  async close(): Promise<void> {
    const sockets = [this.dataSocket, this.tokenSocket, this.segmentSocket].filter((s): s is dgram.Socket => s !== null);
    this.segmented?.discard();
    this.segmented = null;
    this.dataDescriptors = [];
    this.dataSocket = null;
    this.tokenSocket = null;
    this.segmentSocket = null;
    this.pendingTokens.length = 0;
    await Promise.all(sockets.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
}

export interface UdpTransportOptions extends UdpLinkOptions {
  ring: Ring;
}

export class UdpRingTransport {
  readonly ring: Ring;
  readonly link: UdpRingLink;
  private readonly clock: () => number;
  private callback: ((events: RingEvent[]) => void) | null = null;
  private undelivered: RingEvent[] = [];
  private timer: NodeJS.Timeout | null = null;
  private timerAtMs = 0;
  private immediate: NodeJS.Immediate | null = null;
  private running = false;
  /** Times the deadline timer fired (a busy ring should fire it rarely). */
  timerFires = 0;

  constructor(options: UdpTransportOptions) {
    this.ring = options.ring;
    this.clock = options.clock ?? monotonicWallClock;
    this.link = new UdpRingLink(options);
    this.link.onDatagram((bytes, nowMs) => {
      this.ring.receive(bytes, nowMs);
      this.flush();
    });
  }

  /** Ring events, in order. Events produced before a callback exists are kept for it. */
  onEvents(callback: (events: RingEvent[]) => void): void {
    this.callback = callback;
    if (this.undelivered.length > 0) {
      const events = this.undelivered;
      this.undelivered = [];
      callback(events);
    }
  }

  async start(): Promise<void> {
    await this.link.start();
    this.running = true;
    this.ring.tick(this.clock());
    this.flush();
  }

  /** Queue a message; false = the ring's send queue is full (stop reading clients). */
  submit(payload: Uint8Array, safe: boolean): boolean {
    const accepted = this.ring.submit(payload, safe);
    // One flush per event-loop turn, however many messages were submitted in it.
    if (accepted && this.immediate === null && this.running) {
      this.immediate = setImmediate(() => {
        this.immediate = null;
        this.ring.tick(this.clock());
        this.flush();
      });
    }
    return accepted;
  }

  /** Send what the ring produced (packets first), hand out its events, re-arm the timer. */
  flush(): void {
    if (!this.running) return;
    const ready = this.ring.ready();
    for (const packet of ready.packets) this.link.send(packet);
    this.link.flush();
    if (ready.events.length > 0) {
      if (this.callback !== null) this.callback(ready.events);
      else for (const e of ready.events) this.undelivered.push(e);
    }
    this.arm();
  }

  /** One timer at the ring's next deadline; kept when it already fires earlier (cheap per datagram). */
  private arm(): void {
    const at = this.ring.nextDeadlineMs();
    if (at === null) {
      if (this.timer !== null) clearTimeout(this.timer);
      this.timer = null;
      return;
    }
    if (this.timer !== null && this.timerAtMs <= at) return;
    if (this.timer !== null) clearTimeout(this.timer);
    const now = this.clock();
    this.timerAtMs = at;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.timerFires++;
      this.ring.tick(this.clock());
      this.flush();
    }, Math.max(0, at - now));
  }

  async close(): Promise<void> {
    this.running = false;
    if (this.timer !== null) clearTimeout(this.timer);
    if (this.immediate !== null) clearImmediate(this.immediate);
    this.timer = null;
    this.immediate = null;
    await this.link.close();
  }
}
