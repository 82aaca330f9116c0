// Hand-built configuration and status snapshots for the management tests.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startDaemonProcess, type RunningDaemon } from '../src/daemon/daemon.js';
import dgram from 'node:dgram';
import { loadConfig } from '../src/config/index.js';
import { startManagementServer, type ManagementServer } from '../src/management/http.js';
import { MonitorEndpoint } from '../src/management/monitor-endpoint.js';
import { isMonitorDatagram } from '../src/management/monitor-protocol.js';
import { soloConfig } from './helpers/daemon.js';
import { parseConfig, type SpreadConfig } from '../src/config/index.js';
import type { DaemonStatusSnapshot } from '../src/daemon/status-types.js';

export const D1_VID = 1552775919; // virtualId('d1'), §8.7
export const D2_VID = 348480928; // virtualId('d2')
export const BIG_VID = 3884221724; // virtualId('big'): top bit set, int32-negative on the wire
export const CONF_HASH = 1458666200; // configHash of SAMPLE_CONFIG_TEXT

export const SAMPLE_CONFIG_TEXT = `
Spread_Segment 127.255.255.255:4803 {
  d1 127.0.0.1
  d2 127.0.0.2
}
Spread_Segment 10.1.2.255:4803 {
  big 10.1.2.3
}
`;

export function sampleConfig(overrides: Partial<SpreadConfig['params']> = {}): SpreadConfig {
  const config = parseConfig(SAMPLE_CONFIG_TEXT, 'test.conf');
  assert.equal(config.hash, CONF_HASH);
  assert.deepEqual(config.daemons.map((daemon) => daemon.vid), [D1_VID, D2_VID, BIG_VID]);
  return { ...config, params: { ...config.params, ...overrides } };
}

export function sampleSnapshot(overrides: { messages?: number; members?: number[]; name?: string; vid?: number } = {}): DaemonStatusSnapshot {
  const messages = overrides.messages ?? 42;
  const config = sampleConfig();
  return {
    daemon: {
      name: overrides.name ?? 'd1',
      vid: overrides.vid ?? D1_VID,
      address: '127.0.0.1',
      port: 4803,
      version: '0.1.0',
      startedAtMs: 1_700_000_000_000,
      uptimeSeconds: 25.7,
    },
    config: {
      source: config.source,
      hash: config.hash,
      daemons: config.daemons.map(({ name, address, vid }) => ({ name, address, vid })),
    },
    ring: {
      state: 'op',
      myVid: D1_VID,
      leaderVid: D1_VID,
      membId: { procId: D1_VID, time: 1_700_000_001 },
      members: overrides.members ?? [D1_VID, D2_VID],
      aru: 300,
      myAru: 301,
      highestSeq: 302,
      packetsSent: 150,
      packetsReceived: 160,
      packetsDelivered: 302,
      retransmissions: 7,
      tokenHurry: 2,
      tokenRounds: 148,
      membershipChanges: 2,
      window: 160,
      personalWindow: 20,
      acceleratedRing: false,
      acceleratedWindow: 15,
      datagramBytes: 1472,
    },
    groupState: 'gop',
    sessions: 3,
    groups: [
      { name: 'chat', members: 2, localMembers: 1, messages, bytes: messages * 10 },
      { name: 'news', members: 1, localMembers: 1, messages: 5, bytes: 500 },
    ],
    traffic: {
      messagesReceived: 40,
      bytesReceived: 4000,
      messagesDelivered: messages + 5,
      bytesDelivered: messages * 10 + 500,
      slowSessionsCut: 0,
    },
    tokenRoundsPerSecond: 5.75,
  };
}

/**
 * A real daemon in this process with its management HTTP server mounted the way the daemon's
 * `--http` option does: `startManagementServer({ snapshot: () => node.statusSnapshot(now) })`.
 * With `monitor`, a ring-of-one daemon (which binds no UDP port) also answers the monitor
 * protocol on its segment port through a MonitorEndpoint, as the daemon's UDP link will.
 */
export interface WatchedDaemon {
  daemon: RunningDaemon;
  http: ManagementServer;
  statusUrl: string;
  configPath: string;
  stop(): Promise<void>;
}

export async function startWatchedDaemon(options: {
  port: number;
  httpPort: number;
  config?: string;
  name?: string;
  monitor?: boolean;
}): Promise<WatchedDaemon> {
  const scratch = mkdtempSync(path.join(tmpdir(), 'tspread-watched-'));
  const configPath = path.join(scratch, 'spread.conf');
  writeFileSync(configPath, options.config ?? soloConfig(options.port));
  const silent = { info() {}, warn() {}, debug() {} };
  // monitor: false: this fixture emulates the monitor port itself (`monitor` below).
  const daemon = await startDaemonProcess({ configPath, name: options.name, port: options.port, unixDir: scratch, stateDir: scratch, logger: silent, monitor: false });
  const snapshot = () => daemon.node.statusSnapshot(Date.now());
  const http = await startManagementServer({ port: options.httpPort, snapshot });
  let monitorSocket: dgram.Socket | null = null;
  let endpoint: MonitorEndpoint | null = null;
  if (options.monitor) {
    assert.equal(daemon.link, null, 'monitor emulation is for a ring of one');
    const config = loadConfig(configPath);
    const me = config.daemons.find((entry) => entry.vid === snapshot().daemon.vid)!;
    const monitorEndpoint = new MonitorEndpoint({ config: () => config, snapshot, me });
    const socket = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(config.segments[me.segmentIndex].port, me.address, resolve));
    socket.on('message', (bytes, from) => {
      if (isMonitorDatagram(bytes)) monitorEndpoint.handle(bytes, from);
    });
    monitorSocket = socket;
    endpoint = monitorEndpoint;
  }
  return {
    daemon,
    http,
    statusUrl: `${http.url}status`,
    configPath,
    async stop() {
      monitorSocket?.close();
      endpoint?.close();
      await http.close();
      await daemon.stop();
      rmSync(scratch, { recursive: true, force: true });
    },
  };
}
