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

/**
 * DatagramBytes when spread.conf does not set it. On a network: 1472, one Ethernet MTU, as
 * Spread. When every daemon is on loopback (one host, MTU 64 KiB), nothing forces packets
 * that small, and the cost of the ring is per datagram: the largest power of two up to
 * DATAGRAM_BYTES_LOOPBACK_MAX such that a whole Window of packets fits the receive buffer
 * the kernel grants (`receiveBufferBytes`: what we ask for, capped at net.core.rmem_max),
 * so a daemon that misses a rotation still loses nothing. Every daemon of a loopback ring
 * is on the same host, so all compute the same size.
 */
export function defaultDatagramBytes(config: SpreadConfig, receiveBufferBytes: number | null): number {
  if (receiveBufferBytes === null || !config.daemons.every((d) => isLoopbackAddress(d.address))) return DATAGRAM_BYTES_DEFAULT;
  const room = receiveBufferBytes * KERNEL_RECEIVE_BUFFER_FACTOR;
  let bytes = DATAGRAM_BYTES_LOOPBACK_MAX;
  while (bytes > DATAGRAM_BYTES_DEFAULT && bytes * config.params.window > room) bytes /= 2;
  return Math.max(bytes, DATAGRAM_BYTES_DEFAULT);
}

/** The datagram size this daemon's ring uses: spread.conf's, else the default above. */
export function datagramBytesFor(config: SpreadConfig, receiveBufferBytes: number | null): number {
  const chosen = config.params.datagramBytes ?? defaultDatagramBytes(config, receiveBufferBytes);
  // A recovery packet wraps a data packet: leave it room in the largest UDP payload.
  return Math.min(chosen, DATAGRAM_BYTES_MAX - RECOVERED_OVERHEAD_BYTES);
}

/** What a daemon keeps across restarts (src/daemon/ring-identity.ts). */
export type KeptIdentity = Pick<TotemOptions, 'incarnation' | 'ringTimeFloor'>;

/**
 * `receiveBufferBytes`: the UDP receive buffer the kernel grants (null: unknown, no loopback sizing).
 * `kept`: what this daemon kept across restarts (default: nothing).
 */
export function ringOptionsFromConfig(
  config: SpreadConfig,
  me: DaemonSpec,
  nowMs: number,
  receiveBufferBytes: number | null = null,
  kept: KeptIdentity = {},
): TotemOptions {
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
    datagramBytes: datagramBytesFor(config, receiveBufferBytes),
    incarnation: kept.incarnation,
    ringTimeFloor: kept.ringTimeFloor,
  };
}

export function createRingFromConfig(...args: Parameters<typeof ringOptionsFromConfig>): TotemRing {
  return new TotemRing(ringOptionsFromConfig(...args));
}
