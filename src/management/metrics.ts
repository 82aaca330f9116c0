/**
 * Prometheus metrics derived from a daemon status snapshot. Every scrape builds a fresh
 * registry from one snapshot, so /metrics, /status, the monitor and the dashboard report the
 * same numbers and no metric state outlives a scrape (groups that disappear vanish).
 * Counters carry the snapshot's cumulative values (they restart at 0 with the daemon).
 */
import { Counter, Gauge, Registry } from 'prom-client';
import type { DaemonStatusSnapshot } from '../daemon/status-types.js';
import { RING_STATE_CODES } from './monitor-protocol.js';

export const METRICS_CONTENT_TYPE = Registry.PROMETHEUS_CONTENT_TYPE;

type Sample = [name: string, help: string, value: (snapshot: DaemonStatusSnapshot) => number];

const COUNTERS: Sample[] = [
  ['tspread_messages_received_total', 'Client messages accepted from local sessions.', (s) => s.traffic.messagesReceived],
  ['tspread_bytes_received_total', 'Bytes of client messages accepted from local sessions.', (s) => s.traffic.bytesReceived],
  ['tspread_messages_delivered_total', 'Client messages delivered in order at this daemon.', (s) => s.traffic.messagesDelivered],
  ['tspread_bytes_delivered_total', 'Bytes of client messages delivered in order at this daemon.', (s) => s.traffic.bytesDelivered],
  ['tspread_slow_sessions_cut_total', 'Sessions cut for reading too slowly.', (s) => s.traffic.slowSessionsCut],
  ['tspread_ring_packets_sent_total', 'Ring packets originated by this daemon.', (s) => s.ring.packetsSent],
  ['tspread_ring_packets_received_total', 'Ring broadcast packets received.', (s) => s.ring.packetsReceived],
  ['tspread_ring_packets_delivered_total', 'Ring packets delivered.', (s) => s.ring.packetsDelivered],
  ['tspread_ring_retransmissions_total', 'Ring retransmissions sent.', (s) => s.ring.retransmissions],
  ['tspread_ring_token_hurry_total', 'Token retransmissions (Spread token_hurry).', (s) => s.ring.tokenHurry],
  ['tspread_ring_token_rounds_total', 'Tokens processed.', (s) => s.ring.tokenRounds],
  ['tspread_ring_membership_changes_total', 'Ring membership changes.', (s) => s.ring.membershipChanges],
];

const GAUGES: Sample[] = [
  ['tspread_uptime_seconds', 'Seconds since the daemon started.', (s) => s.daemon.uptimeSeconds],
  ['tspread_start_time_seconds', 'Daemon start time, seconds since the Unix epoch.', (s) => s.daemon.startedAtMs / 1000],
  ['tspread_sessions', 'Client sessions connected to this daemon.', (s) => s.sessions],
  ['tspread_groups', 'Groups known to this daemon.', (s) => s.groups.length],
  ['tspread_ring_members', 'Daemons in the current ring.', (s) => s.ring.members.length],
  ['tspread_ring_token_rounds_per_second', 'Token rotations per second over the last few seconds.', (s) => s.tokenRoundsPerSecond],
  ['tspread_ring_aru', 'Ring-wide all-received-up-to sequence.', (s) => s.ring.aru],
  ['tspread_ring_my_aru', 'Local all-received-up-to sequence.', (s) => s.ring.myAru],
  ['tspread_ring_highest_seq', 'Highest sequence number seen.', (s) => s.ring.highestSeq],
  ['tspread_ring_window', 'Flow control: ring Window.', (s) => s.ring.window],
  ['tspread_ring_personal_window', 'Flow control: this daemon\'s PersonalWindow.', (s) => s.ring.personalWindow],
  ['tspread_ring_accelerated_window', 'Flow control: this daemon\'s AcceleratedWindow.', (s) => s.ring.acceleratedWindow],
  ['tspread_ring_datagram_bytes', 'Largest datagram the ring sends (DatagramBytes or the loopback default).', (s) => s.ring.datagramBytes],
  ['tspread_ring_state_code', 'Membership state as spmonitor codes it: 1 OP, 2 SEG, 3 REPRESENTED, 4 GATHER, 5 FORM, 6 EVS.', (s) => RING_STATE_CODES[s.ring.state] ?? 0],
];

/** A registry holding the metrics of one snapshot. */
export function metricsRegistry(snapshot: DaemonStatusSnapshot): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ daemon: snapshot.daemon.name });
  for (const [name, help, value] of COUNTERS) {
    new Counter({ name, help, registers: [registry] }).inc(Math.max(0, value(snapshot)));
  }
  for (const [name, help, value] of GAUGES) {
    new Gauge({ name, help, registers: [registry] }).set(value(snapshot));
  }
  new Gauge({
    name: 'tspread_info',
    help: 'Constant 1; labels carry the daemon identity and configuration hash.',
    labelNames: ['version', 'vid', 'config_hash', 'config_source'],
    registers: [registry],
  })
    .labels(snapshot.daemon.version, String(snapshot.daemon.vid >>> 0), String(snapshot.config.hash >>> 0), snapshot.config.source)
    .set(1);
  const ring = new Gauge({
    name: 'tspread_ring_info',
    help: 'Constant 1; labels carry the ring id, leader and state.',
    labelNames: ['ring_id', 'leader_vid', 'state'],
    registers: [registry],
  });
  ring.labels(ringIdText(snapshot), String(snapshot.ring.leaderVid >>> 0), snapshot.ring.state).set(1);
  const member = new Gauge({
    name: 'tspread_ring_member',
    help: 'Constant 1 for each daemon in the current ring.',
    labelNames: ['member', 'vid'],
    registers: [registry],
  });
  for (const vid of snapshot.ring.members) member.labels(daemonNameOf(snapshot, vid), String(vid >>> 0)).set(1);
  const perGroup: Array<[string, string, (group: DaemonStatusSnapshot['groups'][number]) => number, boolean]> = [
    ['tspread_group_members', 'Members of the group across the ring.', (g) => g.members, false],
    ['tspread_group_local_members', 'Members of the group connected to this daemon.', (g) => g.localMembers, false],
    ['tspread_group_messages_total', 'Data messages delivered to the group at this daemon.', (g) => g.messages, true],
    ['tspread_group_bytes_total', 'Bytes of data messages delivered to the group at this daemon.', (g) => g.bytes, true],
  ];
  const security = snapshot.security;
  if (security !== undefined) {
    const rejected = new Counter({
      name: 'tspread_ring_datagrams_rejected_total',
      help: 'Ring datagrams dropped by the sealed ring: unsealed, malformed, unknown-key, authentication, replay, sender-mismatch.',
      labelNames: ['reason'],
      registers: [registry],
    });
    for (const [reason, count] of Object.entries(security.ringDatagramsRejected)) rejected.labels(reason).inc(count);
    new Counter({ name: 'tspread_sessions_rejected_total', help: 'Sessions refused during the handshake.', registers: [registry] }).inc(security.sessionsRejected);
    new Counter({ name: 'tspread_access_denied_total', help: 'Joins and multicasts refused by the access-control file.', registers: [registry] }).inc(security.accessDenied);
  }
  for (const [name, help, value, counter] of perGroup) {
    const options = { name, help, labelNames: ['group'] as const, registers: [registry] };
    if (counter) {
      const metric = new Counter(options);
      for (const group of snapshot.groups) metric.labels(group.name).inc(Math.max(0, value(group)));
    } else {
      const metric = new Gauge(options);
      for (const group of snapshot.groups) metric.labels(group.name).set(value(group));
    }
  }
  return registry;
}

/** Prometheus text exposition of one snapshot. */
export async function metricsText(snapshot: DaemonStatusSnapshot): Promise<string> {
  return metricsRegistry(snapshot).metrics();
}

/** Ring id as Spread prints it: `<leader VID>:<time>` of the membership id (§5.2). */
export function ringIdText(snapshot: DaemonStatusSnapshot): string {
  return `${snapshot.ring.membId.procId >>> 0}:${snapshot.ring.membId.time}`;
}

export function daemonNameOf(snapshot: DaemonStatusSnapshot, vid: number): string {
  return snapshot.config.daemons.find((daemon) => daemon.vid >>> 0 === vid >>> 0)?.name ?? String(vid >>> 0);
}
