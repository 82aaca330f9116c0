/**
 * Builds the ring for a daemon from its parsed configuration. All configured
 * daemons are members, in configuration order (§11.2); the first is the leader.
 * Matches DaemonOptions.createRing: `createRing: createRingFromConfig`.
 */
import type { DaemonSpec, SpreadConfig } from '../config/types.js';
import { DATAGRAM_BYTES_DEFAULT } from './limits.js';
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
    helloIntervalMs: p.timeouts.joinMs,
    datagramBytes: p.datagramBytes || DATAGRAM_BYTES_DEFAULT,
  };
}

export function createRingFromConfig(config: SpreadConfig, me: DaemonSpec, nowMs: number): TotemRing {
  return new TotemRing(ringOptionsFromConfig(config, me, nowMs));
}
