/**
 * Builds the ring for a daemon from its parsed configuration. Every configured
 * daemon may be a member, in configuration order (§11.2); the first daemon of a
 * ring leads it. Membership timeouts come from spread.conf (§8.5; Alive, Rep and
 * Seg are unused: there are no SEG/REPRESENTED states).
 * Matches DaemonOptions.createRing: `createRing: createRingFromConfig`.
 */
import type { DaemonSpec, SpreadConfig } from '../config/types.js';
import { DATAGRAM_BYTES_DEFAULT, DATAGRAM_BYTES_MAX } from './limits.js';
import { RECOVERED_OVERHEAD_BYTES } from './packet.js';
import { type TotemOptions, TotemRing } from './totem.js';

export function ringOptionsFromConfig(config: SpreadConfig, me: DaemonSpec, nowMs: number): TotemOptions {
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
    // A recovery packet wraps a data packet: leave it room in the largest UDP payload.
    datagramBytes: Math.min(p.datagramBytes || DATAGRAM_BYTES_DEFAULT, DATAGRAM_BYTES_MAX - RECOVERED_OVERHEAD_BYTES),
  };
}

export function createRingFromConfig(config: SpreadConfig, me: DaemonSpec, nowMs: number): TotemRing {
  return new TotemRing(ringOptionsFromConfig(config, me, nowMs));
}
