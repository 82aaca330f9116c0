/**
 * Builds the ring for a daemon from its parsed configuration. Every configured
 * daemon may be a member, in configuration order (§11.2); the first daemon of a
 * ring leads it. Membership timeouts come from spread.conf (§8.5; Alive, Rep and
 * Seg are unused: there are no SEG/REPRESENTED states).
 * Matches DaemonOptions.createRing: `createRing: createRingFromConfig`.
 */
import { isLoopbackAddress } from '../config/address.js';
import type { DaemonSpec, SpreadConfig } from '../config/types.js';
import { DATAGRAM_BYTES_DEFAULT, DATAGRAM_BYTES_LOOPBACK_MAX, DATAGRAM_BYTES_MAX } from './limits.js';
import { RECOVERED_OVERHEAD_BYTES } from './packet.js';
import { type TotemOptions, TotemRing } from './totem.js';

/** Linux reserves twice the SO_RCVBUF asked for; the doubled figure is what fills up. */
const KERNEL_RECEIVE_BUFFER_FACTOR = 2;
/** The MTU that DATAGRAM_BYTES_DEFAULT fills: a link with a larger one carries jumbo frames. */
const ETHERNET_MTU_BYTES = 1500;
/** IP and UDP headers in front of a datagram's payload. */
const IPV4_UDP_HEADER_BYTES = 28;
const IPV6_UDP_HEADER_BYTES = 48;

/**
 * DatagramBytes when spread.conf does not set it. On a network: 1472, one Ethernet MTU, as
 * Spread. The cost of the ring is per datagram, so where the network allows larger ones it
 * uses them, as long as a whole Window of packets fits the receive buffer the kernel grants
 * (`receiveBufferBytes`: what we ask for, capped at net.core.rmem_max), so that a daemon
 * that misses a rotation still loses nothing:
 *   - every daemon on loopback (one host, MTU 64 KiB): the largest power of two up to
 *     DATAGRAM_BYTES_LOOPBACK_MAX. Every daemon is on the same host, so all compute the same.
 *   - one segment, and this daemon's own link has jumbo frames (`linkMtuBytes` > 1500):
 *     one frame of that MTU. A segment is one broadcast domain, where every host must use
 *     the same MTU for UDP to work at all, so the daemons agree. Several segments (routed)
 *     keep 1472: the path between them may not carry jumbo frames.
 */
export function defaultDatagramBytes(config: SpreadConfig, receiveBufferBytes: number | null, linkMtuBytes: number | null = null): number {
  if (receiveBufferBytes === null) return DATAGRAM_BYTES_DEFAULT;
  const room = receiveBufferBytes * KERNEL_RECEIVE_BUFFER_FACTOR;
  const window = config.params.window;
  if (config.daemons.every((d) => isLoopbackAddress(d.address))) {
    let bytes = DATAGRAM_BYTES_LOOPBACK_MAX;
    while (bytes > DATAGRAM_BYTES_DEFAULT && bytes * window > room) bytes /= 2;
    return Math.max(bytes, DATAGRAM_BYTES_DEFAULT);
  }
  if (linkMtuBytes !== null && linkMtuBytes > ETHERNET_MTU_BYTES && config.segments.length === 1) {
    const headers = config.params.activeIpVersion === 'IPv6' ? IPV6_UDP_HEADER_BYTES : IPV4_UDP_HEADER_BYTES;
    return Math.max(Math.min(linkMtuBytes - headers, Math.floor(room / window)), DATAGRAM_BYTES_DEFAULT);
  }
  return DATAGRAM_BYTES_DEFAULT;
}

/** The datagram size this daemon's ring uses: spread.conf's, else the default above. */
export function datagramBytesFor(config: SpreadConfig, receiveBufferBytes: number | null, linkMtuBytes: number | null = null): number {
  const chosen = config.params.datagramBytes ?? defaultDatagramBytes(config, receiveBufferBytes, linkMtuBytes);
  // A recovery packet wraps a data packet: leave it room in the largest UDP payload.
  return Math.min(chosen, DATAGRAM_BYTES_MAX - RECOVERED_OVERHEAD_BYTES);
}

/** What a daemon keeps across restarts (src/daemon/ring-identity.ts). */
export type KeptIdentity = Pick<TotemOptions, 'incarnation' | 'ringTimeFloor'>;

/** What the host says about this daemon's network (absent or null: unknown; off loopback that keeps 1472). */
export interface HostLink {
  /** The UDP receive buffer the kernel grants. */
  receiveBufferBytes?: number | null;
  /** The MTU of this daemon's interface. */
  linkMtuBytes?: number | null;
}

/** `kept`: what this daemon kept across restarts (default: nothing). */
export function ringOptionsFromConfig(config: SpreadConfig, me: DaemonSpec, nowMs: number, link: HostLink = {}, kept: KeptIdentity = {}): TotemOptions {
  const p = config.params;
  return {
    myVid: me.vid,
    members: config.daemons.map((d) => d.vid),
    configHash: config.hash,
    nowMs,
    window: p.window,
    personalWindow: p.personalWindow,
    acceleratedRing: p.acceleratedRing,
    acceleratedWindow: p.acceleratedWindow,
    tokenTimeoutMs: p.timeouts.tokenMs,
    hurryTimeoutMs: p.timeouts.hurryMs,
    joinTimeoutMs: p.timeouts.joinMs,
    gatherTimeoutMs: p.timeouts.gatherMs,
    formTimeoutMs: p.timeouts.formMs,
    lookupTimeoutMs: p.timeouts.lookupMs,
    datagramBytes: datagramBytesFor(config, link.receiveBufferBytes ?? null, link.linkMtuBytes ?? null),
    incarnation: kept.incarnation,
    ringTimeFloor: kept.ringTimeFloor,
  };
}

export function createRingFromConfig(...args: Parameters<typeof ringOptionsFromConfig>): TotemRing {
  return new TotemRing(ringOptionsFromConfig(...args));
}
