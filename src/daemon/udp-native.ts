/**
 * The optional native addon for batched UDP I/O (native/udp_batch.c, built by `npm ci`
 * when a compiler is there; see native/build.mjs). Without it, or with
 * TSPREAD_UDP_BATCHING=off, the ring link sends one datagram per call through dgram and
 * says why once.
 *
 * The addon works on the descriptor of a socket that Node's dgram owns (dgram keeps reading
 * it): GSO sends (one sendmsg, many datagrams), the UDP_GRO option (one read, many
 * datagrams of one flow), and a look at whether anything waits to be read (FIONREAD).
 */
import type dgram from 'node:dgram';
import { loadNativeAddon } from './native-addon.js';

export interface UdpBatching {
  /** One sendmsg of `buffers` cut into datagrams of `segmentBytes` (all but the last that long): bytes sent, or -errno. */
  sendSegments(fd: number, buffers: Uint8Array[], segmentBytes: number, address: string, port: number): number;
  /** Sets UDP_GRO on the socket: 0, or -errno. */
  enableGro(fd: number): number;
  /** Length of the datagram a read would return now (0: nothing waiting), or -errno. */
  nextDatagramBytes(fd: number): number;
  /** Most buffers one sendSegments takes. */
  readonly segmentsMax: number;
}

export type BatchingAvailability = { batching: UdpBatching; reason: null } | { batching: null; reason: string };

/** The addon, unless switched off or not Linux. */
export function loadUdpBatching(env: NodeJS.ProcessEnv = process.env): BatchingAvailability {
  if (env.TSPREAD_UDP_BATCHING === 'off') return { batching: null, reason: 'TSPREAD_UDP_BATCHING=off' };
  if (process.platform !== 'linux') return { batching: null, reason: `GSO/GRO are Linux only (${process.platform})` };
  const loaded = loadNativeAddon<UdpBatching>('udp_batch.node');
  return loaded.addon === null ? { batching: null, reason: loaded.reason } : { batching: loaded.addon, reason: null };
}

/**
 * The descriptor of a bound dgram socket, or null. Node keeps the handle behind a private
 * symbol (the public `_handle` getter is deprecated and warns).
 */
export function socketDescriptor(socket: dgram.Socket): number | null {
  const state = Object.getOwnPropertySymbols(socket).find((symbol) => symbol.description === 'state symbol');
  const handle = state === undefined ? undefined : (socket as unknown as Record<symbol, { handle?: { fd?: unknown } }>)[state]?.handle;
  const fd = handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : null;
}
