// The management tools against real daemons: `tspread daemon` processes and in-process ones (ports 25060–25069).
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCheck } from '../src/management/check.js';
import type { RingView } from '../src/management/http.js';
import type { MonitorStatus } from '../src/management/monitor-protocol.js';
import type { DaemonStatusSnapshot } from '../src/daemon/status-types.js';
import { startWatchedDaemon } from './management-fixtures.js';
import { connect } from '../src/client/index.js';
import { CLI_PATH, soloConfig, startDaemon, type StartedDaemon } from './helpers/daemon.js';

const run = promisify(execFile);
const PORT = 25060;

describe('tspread check against a real daemon', () => {
  let daemon: StartedDaemon;
  beforeAll(async () => {
    daemon = await startDaemon({ port: PORT, config: soloConfig(PORT) });
  });
  afterAll(async () => {
    await daemon?.stop();
  });

  it('times self-delivery through the daemon over TCP and the Unix socket', async () => {
    const tcp = await runCheck({ daemon: `${PORT}@127.0.0.1`, warningMs: 1000, criticalMs: 2000, timeoutSeconds: 5 });
    expect(tcp.line).toMatch(/^SPREAD OK - self-delivery [\d.]+ ms at 25060@127\.0\.0\.1 \| latency=[\d.]+ms;1000;2000;0 connect=/);
    expect(tcp.status).toBe(0);
    expect(tcp.latencyMs).toBeGreaterThan(0);

    const unix = await runCheck({
      daemon: String(PORT),
      unixSocketDir: path.dirname(daemon.unixPath),
      warningMs: 1000,
      criticalMs: 2000,
      timeoutSeconds: 5,
      service: 'safe',
    });
    expect(unix.line).toMatch(/^SPREAD OK - self-delivery [\d.]+ ms at 25060 \|/);
  });

  it('runs as a Nagios plugin: exit 0 and one line; exit 2 once the daemon is gone', async () => {
    const ok = await run(process.execPath, [CLI_PATH, 'check', '-s', `${PORT}@127.0.0.1`, '-w', '1000', '-c', '2000', '-t', '5']);
    expect(ok.stdout).toMatch(/^SPREAD OK - self-delivery [\d.]+ ms at 25060@127\.0\.0\.1 \| latency=/);
    expect(ok.stdout.trim().split('\n')).toHaveLength(1);

    await daemon.stop();
    const down = await run(process.execPath, [CLI_PATH, 'check', '-s', `${PORT}@127.0.0.1`, '-t', '2']).catch((error: { code: number; stdout: string }) => error);
    expect(down).toMatchObject({ code: 2 });
    expect((down as { stdout: string }).stdout).toMatch(/^SPREAD CRITICAL - connect failed at 25060@127\.0\.0\.1/);
  });
});

describe('terminal, Nagios, Prometheus and browser views show the same numbers', () => {
  it('agrees on one quiet daemon after traffic', async () => {
    const port = 25064;
    const watched = await startWatchedDaemon({ port, httpPort: 25065, monitor: true });
    const { daemon, http: server } = watched;
    const session = await connect({ daemon: `${port}@127.0.0.1`, privateName: 'same' });
    try {
      session.join('orders');
      for (let index = 0; index < 30; index++) session.multicast('orders', `order ${index}`);
      await expect.poll(() => daemon.node.statusSnapshot(Date.now()).groups.find((group) => group.name === 'orders')?.messages).toBe(30);

      // Nagios, with the daemon's counters in the performance data (its probe is one more message).
      const check = await runCheck({ daemon: `${port}@127.0.0.1`, warningMs: 1000, criticalMs: 2000, timeoutSeconds: 5, statusUrl: `${server.url}status` });
      expect(check.status).toBe(0);
      await expect.poll(() => daemon.node.statusSnapshot(Date.now()).sessions).toBe(1);

      const snapshot = (await (await fetch(`${server.url}status`)).json()) as DaemonStatusSnapshot;
      const metrics = await (await fetch(`${server.url}metrics`)).text();
      const ring = (await (await fetch(`${server.url}ring`)).json()) as RingView;
      const monitor = await run(process.execPath, [CLI_PATH, 'monitor', '--http', `${server.url}status`, '--once', '--json']);
      const monitored = (JSON.parse(monitor.stdout) as { daemons: Array<{ status: MonitorStatus }> }).daemons[0].status;
      // spmonitor's way: the §9 UDP protocol to the daemon's segment port.
      const udp = await run(process.execPath, [CLI_PATH, 'monitor', '-c', watched.configPath, '-p', '25066', '--once', '--json']);
      const udpStatus = (JSON.parse(udp.stdout) as { daemons: Array<{ name: string; ok: boolean; status: MonitorStatus }> }).daemons[0];
      expect(udpStatus).toMatchObject({ name: 'localhost', ok: true });
      expect({ ...udpStatus.status, sec: 0 }).toEqual({ ...monitored, sec: 0 });

      const delivered = snapshot.traffic.messagesDelivered;
      expect(delivered).toBe(31);
      expect(check.line).toContain(`messages_delivered=${delivered}c`);
      expect(metrics).toContain(`tspread_messages_delivered_total{daemon="localhost"} ${delivered}`);
      expect(metrics).toContain(`tspread_bytes_delivered_total{daemon="localhost"} ${snapshot.traffic.bytesDelivered}`);
      expect(metrics).toContain('tspread_group_messages_total{group="orders",daemon="localhost"} 30');
      expect(metrics).toContain(`tspread_sessions{daemon="localhost"} ${snapshot.sessions}`);
      expect(metrics).toContain(`tspread_ring_token_rounds_total{daemon="localhost"} ${snapshot.ring.tokenRounds}`);
      expect(monitored).toMatchObject({
        messageDelivered: delivered,
        numSessions: snapshot.sessions,
        numGroups: snapshot.groups.length,
        numProcs: 1,
        tokenRounds: snapshot.ring.tokenRounds,
        retrans: snapshot.ring.retransmissions,
      });
      const viewed = ring.daemons[0].snapshot!;
      expect(viewed.traffic).toEqual(snapshot.traffic);
      expect(viewed.groups).toEqual(snapshot.groups);
    } finally {
      await session.disconnect();
      await watched.stop();
    }
  });
});
