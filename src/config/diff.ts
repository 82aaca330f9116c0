/**
 * Explains in words why two configurations hash differently, for the log line written when
 * daemons (or spmonitor) refuse each other over a hash mismatch (§8.6).
 */
import type { DaemonSpec, SpreadConfig } from './types.js';
import { configHash } from './hash.js';

function describeDaemon(daemon: DaemonSpec): string {
  return `'${daemon.name}' ${daemon.address} vid ${daemon.vid}`;
}

function diffDaemons(segmentNumber: number, a: DaemonSpec[], b: DaemonSpec[]): string[] {
  const reasons: string[] = [];
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const left = a[i];
    const right = b[i];
    const where = `segment ${segmentNumber} daemon ${i + 1}`;
    if (!left) reasons.push(`${where}: only in B (${describeDaemon(right)})`);
    else if (!right) reasons.push(`${where}: only in A (${describeDaemon(left)})`);
    else {
      if (left.name !== right.name) reasons.push(`${where}: name '${left.name}' vs '${right.name}'`);
      if (left.address !== right.address) reasons.push(`${where} ('${left.name}'): address ${left.address} vs ${right.address}`);
      if (left.vid !== right.vid) reasons.push(`${where} ('${left.name}'): VirtualID ${left.vid} vs ${right.vid}`);
    }
  }
  return reasons;
}

/** Human text; one reason per line. Empty differences are reported as "same hash". */
export function configDiff(a: SpreadConfig, b: SpreadConfig): string {
  const hashA = configHash(a);
  const hashB = configHash(b);
  const header = `A = ${a.source} (hash ${hashA}), B = ${b.source} (hash ${hashB})`;
  if (hashA === hashB) return `${header}: same hash`;

  const reasons: string[] = [];
  if (a.params.acceleratedRing !== b.params.acceleratedRing) {
    const ring = (config: SpreadConfig): string => (config.params.acceleratedRing ? 'Accelerated Ring' : 'Original Ring');
    reasons.push(`ring protocol: A ${ring(a)}, B ${ring(b)} (write AcceleratedRing explicitly and identically in every file)`);
  }
  if (a.params.excludeSegAddrsFromHash !== b.params.excludeSegAddrsFromHash) {
    reasons.push(`ExcludeSegAddrsFromHash: A ${a.params.excludeSegAddrsFromHash}, B ${b.params.excludeSegAddrsFromHash}`);
  }
  if (a.segments.length !== b.segments.length) reasons.push(`segment count: A ${a.segments.length}, B ${b.segments.length}`);
  const hashesSegmentAddresses = !a.params.excludeSegAddrsFromHash || !b.params.excludeSegAddrsFromHash;
  for (let i = 0; i < Math.min(a.segments.length, b.segments.length); i++) {
    const left = a.segments[i];
    const right = b.segments[i];
    if (left.port !== right.port) reasons.push(`segment ${i + 1}: port ${left.port} vs ${right.port}`);
    if (hashesSegmentAddresses && left.addresses.join(' ') !== right.addresses.join(' ')) {
      reasons.push(`segment ${i + 1}: addresses ${left.addresses.join(' ')} vs ${right.addresses.join(' ')}`);
    }
    reasons.push(...diffDaemons(i + 1, left.daemons, right.daemons));
  }
  if (reasons.length === 0) reasons.push('no difference found in segments, daemons or ring protocol (hash text differs otherwise; compare configHashText)');
  return [`${header} differ:`, ...reasons.map((reason) => `  - ${reason}`)].join('\n');
}
