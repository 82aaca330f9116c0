// `tspread monitor` over UDP (§9) against in-process daemons that answer with the same
// respondToMonitor a tspread daemon runs, and over HTTP against the management server.
import dgram from 'node:dgram';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/index.js';
import type { DaemonSpec, SpreadConfig } from '../src/config/types.js';
import { encodePartitionRequest, isMonitorDatagram, type MonitorOutcome } from '../src/management/monitor-protocol.js';
import { MonitorEndpoint, RateMeter } from '../src/management/monitor-endpoint.js';
import { UdpMonitor, formatRound, parseFlowControlSpec, parsePartitionSpec, selectDaemons } from '../src/management/monitor.js';
import { startManagementServer } from '../src/management/http.js';
import { sampleConfig, sampleSnapshot } from './management-fixtures.js';

const run = promisify(execFile);
const SEGMENT_PORT = 25040;
const CONFIG_TEXT = `DangerousMonitor = true
Spread_Segment 127.255.255.255:${SEGMENT_PORT} {
  d1 127.0.0.1
  d2 127.0.0.2
}
`;

/** A daemon's UDP port P handing monitor datagrams to a MonitorEndpoint; records what it applied. */
class FakeMonitoredDaemon {
  private constructor(
    private readonly socket: dgram.Socket,
    readonly endpoint: MonitorEndpoint,
    readonly outcomes: MonitorOutcome[],
  ) {}

  static async start(config: SpreadConfig, self: DaemonSpec): Promise<FakeMonitoredDaemon> {
    const socket = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(SEGMENT_PORT, self.address, resolve));
    const snapshot = () => {
      const base = sampleSnapshot({ name: self.name, vid: self.vid, members: config.daemons.map((d) => d.vid) });
      return { ...base, config: { source: config.source, hash: config.hash, daemons: config.daemons.map(({ name, address, vid }) => ({ name, address, vid })) } };
    };
    const outcomes: MonitorOutcome[] = [];
    const endpoint = new MonitorEndpoint({
      config: () => config,
      snapshot,
      me: self,
      onPartition: (partition) => outcomes.push(partition),
      onFlowControl: (settings) => outcomes.push(settings),
      onReload: () => outcomes.push({ kind: 'reload' }),
    });
    socket.on('message', (bytes, remote) => {
      if (isMonitorDatagram(bytes)) endpoint.handle(bytes, remote);
    });
    return new FakeMonitoredDaemon(socket, endpoint, outcomes);
  }

  close(): void {
    this.socket.close();
    this.endpoint.close();
  }
}

describe('tspread monitor', () => {
  let configPath: string;
  let config: SpreadConfig;
  let d1: FakeMonitoredDaemon;
  let d2: FakeMonitoredDaemon;

  beforeAll(async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'tspread-monitor-'));
    configPath = path.join(dir, 'spread.conf');
    writeFileSync(configPath, CONFIG_TEXT);
    config = loadConfig(configPath);
    d1 = await FakeMonitoredDaemon.start(config, config.daemons[0]);
    d2 = await FakeMonitoredDaemon.start(config, config.daemons[1]);
  });
  afterAll(() => {
    d1?.close();
    d2?.close();
  });

  it('polls every daemon and prints spmonitor\'s status block', async () => {
    const monitor = await UdpMonitor.open({ configPath, name: 'd1', port: 25041 });
    try {
      const { rows } = await monitor.poll(1000);
      expect(rows.map((row) => [row.name, row.ok])).toEqual([['d1', true], ['d2', true]]);
      expect(rows[1].status).toMatchObject({ myId: config.daemons[1].vid, state: 1, window: 160, personalWindow: 20, messageDelivered: 47 });
      const text = formatRound(rows, monitor.config, new Map());
      expect(text).toContain('Status at d2 V 5.00. 1 (state 1 OP, gstate 1 GOP) after 25 seconds :');
      expect(text).toContain('Membership  :  2  procs in 1 segments, leader is d1');
      expect(text).toContain('Sessions :       3\tGroups    :       2\tWindow     :     160');
      expect(text).toContain('Deliver M:      47\tDeliver Pk:     302\tP/A Window :      20/15');

      monitor.selected = selectDaemons(monitor.config, ['d2']);
      const only = await monitor.poll(1000);
      expect(only.rows.map((row) => row.name)).toEqual(['d2']);
    } finally {
      await monitor.close();
    }
  });

  it('sends partition, flow control, terminate and reload as §9.3 packets, twice each', async () => {
    const monitor = await UdpMonitor.open({ configPath, name: 'd1', port: 25042 });
    const received = (daemon: FakeMonitoredDaemon) => daemon.outcomes.splice(0);
    const settle = () => new Promise((resolve) => setTimeout(resolve, 100));
    try {
      received(d1);
      received(d2);
      monitor.partition = parsePartitionSpec('d1=1,d2=2', monitor.config);
      await monitor.sendPartition(true);
      await settle();
      expect(received(d1)).toEqual(Array(2).fill({ kind: 'partition', components: [1, 2], myComponent: 1, terminate: false }));
      expect(received(d2)).toEqual(Array(2).fill({ kind: 'partition', components: [1, 2], myComponent: 2, terminate: false }));

      monitor.flowControl = parseFlowControlSpec('window=200,d2=30/10', monitor.config);
      await monitor.sendFlowControl();
      await settle();
      expect(received(d1)[0]).toEqual({ kind: 'flowControl', window: 200, personalWindow: null, acceleratedWindow: null });
      expect(received(d2)[0]).toEqual({ kind: 'flowControl', window: 200, personalWindow: 30, acceleratedWindow: 10 });

      await monitor.terminate(selectDaemons(monitor.config, ['d2']));
      await settle();
      expect(received(d1)).toEqual([]);
      expect(received(d2)).toEqual(Array(2).fill({ kind: 'partition', components: [1, -1], myComponent: -1, terminate: true }));

      await monitor.reload();
      await settle();
      expect(received(d1)).toEqual([{ kind: 'reload' }, { kind: 'reload' }]);
      expect(monitor.partition).toEqual([0, 0]);
    } finally {
      await monitor.close();
    }
  });

  it('runs non-interactively from the command line (--once --json)', async () => {
    const { stdout } = await run(process.execPath, ['dist/src/tools/cli.js', 'monitor', '-c', configPath, '-n', 'd1', '-p', '25043', '--once', '--json']);
    const round = JSON.parse(stdout) as { daemons: Array<{ name: string; ok: boolean; status: { numSessions: number } }> };
    expect(round.daemons.map((row) => [row.name, row.ok, row.status.numSessions])).toEqual([['d1', true, 3], ['d2', true, 3]]);

    const text = await run(process.execPath, ['dist/src/tools/cli.js', 'monitor', '-c', configPath, '-n', 'd1', '-p', '25043', '--once', '-d', 'd2']);
    expect(text.stdout).toContain('Status at d2');
    expect(text.stdout).not.toContain('Status at d1');
  });

  it('drives spmonitor\'s menu from stdin (--menu)', async () => {
    d1.outcomes.splice(0);
    d2.outcomes.splice(0);
    const child = spawn(process.execPath, ['dist/src/tools/cli.js', 'monitor', '-c', configPath, '-n', 'd1', '-p', '25046', '-t', '1', '--menu'], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    // 1: define partition (d1 → 1, d2 → 2); 3: review; 2: send; 4: cancel; 5/7: flow control; 0: poll d2 only; 9: exit.
    child.stdin.end(['1', '1', '2', '3', '2', '4', '5', '150', '', '25', '7', '0', 'd2', '', '9', ''].join('\n'));
    expect(await exited).toBe(0);
    expect(stdout).toContain('Monitor Menu:');
    expect(stdout).toMatch(/Partition \(not sent\):\n  d1 +1\n  d2 +2/);
    expect(stdout).toMatch(/Window: 150 +\(configured 160\)\n  d1 +personal unchanged +accelerated unchanged\n  d2 +personal 25/);
    expect(stdout).toContain('Polling: d2');
    const partitions = d2.outcomes.filter((outcome) => outcome.kind === 'partition');
    expect(partitions).toEqual([
      { kind: 'partition', components: [1, 2], myComponent: 2, terminate: false },
      { kind: 'partition', components: [1, 2], myComponent: 2, terminate: false },
      { kind: 'partition', components: [0, 0], myComponent: 0, terminate: false },
      { kind: 'partition', components: [0, 0], myComponent: 0, terminate: false },
    ]);
  });

  it('reads /status over HTTP with --http and shows the ring and groups', async () => {
    const server = await startManagementServer({ port: 25044, snapshot: () => sampleSnapshot() });
    try {
      const { stdout } = await run(process.execPath, ['dist/src/tools/cli.js', 'monitor', '--http', `${server.url}status`, 'http://127.0.0.1:25045/status', '--once']).catch(
        (error: { stdout: string; code: number }) => {
          expect(error.code).toBe(1); // the second URL has no daemon
          return { stdout: error.stdout };
        },
      );
      expect(stdout).toContain('Status at d1');
      expect(stdout).toContain('members d1 d2');
      expect(stdout).toMatch(/group chat +members +2 \(local 1\) +messages +42/);
      expect(stdout).toContain('http://127.0.0.1:25045/status: no status (ECONNREFUSED)');
    } finally {
      await server.close();
    }
  });

  it('parses partition and flow-control specs', () => {
    expect(parsePartitionSpec('1,2', config)).toEqual([1, 2]);
    expect(parsePartitionSpec('d2=3', config)).toEqual([0, 3]);
    expect(() => parsePartitionSpec('d9=1', config)).toThrow(/no daemon 'd9'/);
    expect(parseFlowControlSpec('window=-1,d1=5', config)).toEqual({ window: null, personalWindows: [5, null], acceleratedWindows: [null, null] });
    expect(() => parseFlowControlSpec('d1=x', config)).toThrow(/bad window/);
  });
});

describe('MonitorEndpoint and RateMeter', () => {
  it('lets a partition lapse, ignores bad packets and counts', async () => {
    const config = { ...sampleConfig({ dangerousMonitor: true }) };
    const applied: number[][] = [];
    const endpoint = new MonitorEndpoint({
      config: () => config,
      snapshot: () => sampleSnapshot(),
      me: config.daemons[0],
      onPartition: (partition) => applied.push(partition.components),
      partitionLifetimeMs: 50,
    });
    try {
      const identity = { vid: config.daemons[0].vid, confHash: config.hash };
      expect(endpoint.handle(encodePartitionRequest(identity, [1, 2, 2]), { address: '127.0.0.1' }).kind).toBe('partition');
      expect(endpoint.handle(encodePartitionRequest(identity, [1, 2, 2]), { address: '127.0.0.9' }).kind).toBe('ignored');
      await new Promise((resolve) => setTimeout(resolve, 120));
      expect(applied).toEqual([[1, 2, 2], [0, 0, 0]]);
      expect(endpoint.counters).toEqual({ accepted: 1, ignored: 1, statusReplies: 0 });
    } finally {
      endpoint.close();
    }
  });

  it('measures token rounds per second over a window', () => {
    const meter = new RateMeter(5000);
    expect(meter.sample(0, 1000)).toBe(0);
    expect(meter.sample(10, 2000)).toBe(10);
    expect(meter.sample(30, 3000)).toBe(15);
    expect(meter.sample(130, 8000)).toBeCloseTo(20, 5); // window now starts at 3000
  });
});
