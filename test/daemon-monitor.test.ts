// The monitor protocol (§9) answered by real `tspread daemon` processes on their UDP port P:
// a ring of one (its own monitor socket) and a ring of three (the ring's data socket), checked
// against the same daemons' --http /status and /metrics.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { connect, type Session } from '../src/client/index.js';
import { loadConfig } from '../src/config/index.js';
import type { DaemonStatusSnapshot } from '../src/daemon/status-types.js';
import type { MonitorStatus } from '../src/management/monitor-protocol.js';
import { CLI_PATH, freePort, soloConfig, startDaemon, startRing, type StartedDaemon, type StartedRing } from './helpers/daemon.js';

const run = promisify(execFile);

interface MonitorRowJson {
  name: string;
  ok: boolean;
  error?: string;
  status?: MonitorStatus;
}

/** `tspread monitor --once --json` with this configuration; rows by daemon name, plus the exit code. */
async function monitorOnce(configPath: string, extra: string[] = []): Promise<{ code: number; rows: Map<string, MonitorRowJson> }> {
  const replyPort = await freePort({ from: 24900, to: 24999, udp: ['127.0.0.1'] });
  const args = [CLI_PATH, 'monitor', '-c', configPath, '-n', 'd1', '-p', String(replyPort), '--once', '--json', '--wait', '2000', ...extra];
  const result = await run(process.execPath, args, { timeout: 15_000 }).then(
    (ok) => ({ code: 0, stdout: ok.stdout }),
    (error: { code: number; stdout: string; stderr: string }) => ({ code: error.code, stdout: error.stdout, stderr: error.stderr }),
  );
  const line = result.stdout.trim().split('\n').filter((text) => text.startsWith('{')).pop();
  if (line === undefined) throw new Error(`monitor printed no JSON (exit ${result.code}): ${JSON.stringify(result)}`);
  const rows = (JSON.parse(line) as { daemons: MonitorRowJson[] }).daemons;
  return { code: result.code, rows: new Map(rows.map((row) => [row.name, row])) };
}

async function httpStatus(port: number): Promise<DaemonStatusSnapshot> {
  return (await (await fetch(`http://127.0.0.1:${port}/status`)).json()) as DaemonStatusSnapshot;
}

async function httpMetrics(port: number): Promise<string> {
  return (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
}

function metric(text: string, name: string, daemon: string): number {
  const match = new RegExp(`^${name}\\{daemon="${daemon}"\\} (\\S+)$`, 'm').exec(text);
  if (!match) throw new Error(`no ${name} for ${daemon} in /metrics`);
  return Number(match[1]);
}

/** A session on `port` in group 'watched' that sent `count` AGREED messages and saw them come back. */
async function traffic(port: number, name: string, count: number): Promise<Session> {
  const session = await connect({ daemon: `${port}@127.0.0.1`, privateName: name });
  session.join('watched');
  for (let index = 0; index < count; index++) session.multicast('watched', `message ${index}`);
  let seen = 0;
  for await (const message of session) if (message.kind === 'data' && message.sender === session.privateGroup && ++seen === count) break;
  return session;
}

describe('a ring of one answers the monitor protocol on its own UDP socket', () => {
  let daemon: StartedDaemon;
  let httpPort: number;
  let scratch: string;
  let configPath: string;
  let config: string;
  beforeAll(async () => {
    const port = await freePort({ udp: ['127.0.0.1'] });
    httpPort = await freePort();
    config = soloConfig(port, ['DangerousMonitor = true']).replace('localhost 127.0.0.1', 'd1 127.0.0.1');
    scratch = mkdtempSync(path.join(tmpdir(), 'tspread-monitor-'));
    configPath = path.join(scratch, 'spread.conf');
    writeFileSync(configPath, config);
    daemon = await startDaemon({ port, config, args: ['-n', 'd1', '--http', String(httpPort)] });
  });
  afterAll(async () => {
    await daemon?.stop();
    rmSync(scratch, { recursive: true, force: true });
  });

  it('reports the same numbers over UDP as /status and /metrics', async () => {
    const session = await traffic(daemon.port, 'solo', 25);
    onTestFinished(() => session.disconnect());
    const { code, rows } = await monitorOnce(configPath);
    expect(code).toBe(0);
    const row = rows.get('d1')!;
    expect(row).toMatchObject({ ok: true });
    const snapshot = await httpStatus(httpPort);
    const metrics = await httpMetrics(httpPort);
    const status = row.status!;
    expect(snapshot.traffic.messagesDelivered).toBeGreaterThanOrEqual(25);
    expect(status).toMatchObject({
      numProcs: 1,
      messageDelivered: snapshot.traffic.messagesDelivered,
      numSessions: snapshot.sessions,
      numGroups: snapshot.groups.length,
      window: snapshot.ring.window,
      personalWindow: snapshot.ring.personalWindow,
      majorVersion: 5,
    });
    expect(status.myId >>> 0).toBe(snapshot.daemon.vid >>> 0);
    expect(metric(metrics, 'tspread_messages_delivered_total', 'd1')).toBe(status.messageDelivered);
    expect(metric(metrics, 'tspread_sessions', 'd1')).toBe(status.numSessions);
    expect(metric(metrics, 'tspread_groups', 'd1')).toBe(status.numGroups);
    expect(metric(metrics, 'tspread_ring_members', 'd1')).toBe(status.numProcs);
  });

  it('ignores a monitor with a different configuration hash', async () => {
    const otherPath = path.join(scratch, 'other.conf');
    writeFileSync(otherPath, `AcceleratedRing = true\n${config}`);
    expect(loadConfig(otherPath).hash).not.toBe(loadConfig(configPath).hash);
    const { code, rows } = await monitorOnce(otherPath, ['--wait', '500']);
    expect(code).toBe(1);
    expect(rows.get('d1')).toMatchObject({ ok: false });
  });

  it('logs flow control (a ring of one has none) and reload as not applied, and exits cleanly when told to terminate', async () => {
    await monitorOnce(configPath, ['--flow-control', 'window=200,d1=30', '--reload']);
    await daemon.waitForOutput('monitor flow control not applied', 5000);
    await daemon.waitForOutput('monitor reload not applied', 5000);
    const exited = new Promise<number | null>((resolve) => daemon.process.once('exit', (exitCode) => resolve(exitCode)));
    await monitorOnce(configPath, ['--terminate', 'd1', '--wait', '300']);
    expect(await exited).toBe(0);
    expect(daemon.output()).toContain('monitor asked this daemon to terminate');
  });
});

describe('a ring of three daemons answers the monitor protocol on the ring port', () => {
  let ring: StartedRing;
  const httpPorts: number[] = [];
  beforeAll(async () => {
    for (let index = 0; index < 3; index++) httpPorts.push(await freePort());
    ring = await startRing({ count: 3, extraLines: ['DangerousMonitor = true'], argsFor: (index) => ['--http', String(httpPorts[index])] });
  }, 30_000);
  afterAll(async () => {
    await ring?.stop();
  }, 30_000);

  it('every daemon reports the ring of three, matching its own /status and /metrics', async () => {
    // Traffic from every daemon, so each has a session, a group and deliveries to report.
    const sessions = await Promise.all(ring.daemons.map((daemon, index) => traffic(daemon.port, `c${index + 1}`, 20)));
    // Every daemon delivers all 60; the ring is quiet afterwards.
    await expect
      .poll(async () => Promise.all(httpPorts.map(async (port) => (await httpStatus(port)).traffic.messagesDelivered)), { timeout: 10_000 })
      .toEqual([60, 60, 60]);
    onTestFinished(async () => {
      await Promise.all(sessions.map((session) => session.disconnect()));
    });
    const { code, rows } = await monitorOnce(ring.configPath);
    expect(code).toBe(0);
    for (const [index, name] of ['d1', 'd2', 'd3'].entries()) {
      const row = rows.get(name)!;
      expect(row, name).toMatchObject({ ok: true });
      const snapshot = await httpStatus(httpPorts[index]);
      const metrics = await httpMetrics(httpPorts[index]);
      const status = row.status!;
      expect(status.numProcs).toBe(3);
      expect(snapshot.ring.members).toHaveLength(3);
      expect(status).toMatchObject({
        messageDelivered: snapshot.traffic.messagesDelivered,
        numSessions: snapshot.sessions,
        numGroups: snapshot.groups.length,
        membershipChanges: snapshot.ring.membershipChanges,
      });
      expect(status.myId >>> 0).toBe(snapshot.daemon.vid >>> 0);
      expect(status.leaderId >>> 0).toBe(snapshot.ring.leaderVid >>> 0);
      expect(snapshot.traffic.messagesDelivered).toBe(60);
      expect(status.numSessions).toBe(1);
      expect(status.numGroups).toBe(1);
      expect(metric(metrics, 'tspread_messages_delivered_total', name)).toBe(status.messageDelivered);
      expect(metric(metrics, 'tspread_ring_members', name)).toBe(3);
      expect(metric(metrics, 'tspread_sessions', name)).toBe(status.numSessions);
    }
    // The monitor's packets are not ring traffic: no daemon counted them as bad sources.
    for (const daemon of ring.daemons) expect(daemon.output()).not.toContain('refusing daemon');
  }, 30_000);

  it('applies and lifts a monitor partition at every daemon', async () => {
    await monitorOnce(ring.configPath, ['--partition', 'd1=1,d2=1,d3=2']);
    for (const daemon of ring.daemons) await daemon.waitForOutput('monitor partition applied', 5000);
    expect(ring.daemons[2].output()).toMatch(/"cutOff":\["d1","d2"\].*monitor partition applied/);
    await monitorOnce(ring.configPath, ['--cancel-partition']);
    for (const daemon of ring.daemons) await daemon.waitForOutput('monitor partition lifted', 5000);
  }, 30_000);

  it('applies flow control at every daemon, refuses an impossible one, and the ring keeps ordering', async () => {
    const windows = async () =>
      Promise.all(httpPorts.map(async (port) => {
        const { window, personalWindow } = (await httpStatus(port)).ring;
        return [window, personalWindow];
      }));
    await monitorOnce(ring.configPath, ['--flow-control', 'window=200,d1=30,d2=25']);
    await expect.poll(windows, { timeout: 5000 }).toEqual([[200, 30], [200, 25], [200, 20]]);
    // PersonalWindow above Window: refused, nothing changes.
    await monitorOnce(ring.configPath, ['--flow-control', 'window=10,d1=30']);
    await ring.daemons[0].waitForOutput('monitor flow control not applied', 5000);
    expect(ring.daemons[0].output()).toMatch(/PersonalWindow 30 is not in 1\.\.Window \(10\)/);
    expect(await windows()).toEqual([[200, 30], [200, 25], [200, 20]]); // every daemon's PersonalWindow exceeds 10
    const before = (await httpStatus(httpPorts[2])).traffic.messagesDelivered;
    const sessions = await Promise.all(ring.daemons.map((daemon, index) => traffic(daemon.port, `f${index + 1}`, 20)));
    onTestFinished(async () => {
      await Promise.all(sessions.map((session) => session.disconnect()));
    });
    await expect.poll(async () => (await httpStatus(httpPorts[2])).traffic.messagesDelivered - before, { timeout: 10_000 }).toBeGreaterThanOrEqual(60);
  }, 30_000);

  it('a daemon told to terminate exits cleanly; the others keep answering', async () => {
    const d3 = ring.daemons[2];
    const exited = new Promise<number | null>((resolve) => d3.process.once('exit', (exitCode) => resolve(exitCode)));
    const { code, rows } = await monitorOnce(ring.configPath, ['--terminate', 'd3', '-d', 'd1', 'd2']);
    expect(await exited).toBe(0);
    expect(d3.output()).toContain('monitor asked this daemon to terminate');
    expect(code).toBe(0);
    expect([...rows.keys()]).toEqual(['d1', 'd2']);
  }, 30_000);
});
