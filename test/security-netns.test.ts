/**
 * The sealed ring and TLS client links on the wire, in network namespaces (docs/security.md):
 *   - tcpdump in a daemon's namespace captures ring traffic and a TLS client link while a
 *     client sends a known marker: the capture never holds it (a plain TCP control marker,
 *     sent the same way, is there, so the capture does see client links);
 *   - a fuzzer in a ring member's namespace sends thousands of replayed, truncated, forged,
 *     wrong-key, unknown-key, unsealed and garbage datagrams to the ring ports during an
 *     AGREED load: the ring keeps one order and loses nothing, no membership changes, and
 *     the daemons count the refusals (/metrics).
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type Session } from '../src/client/index.js';
import { parseConfig } from '../src/config/parser.js';
import { sealedLength } from '../src/security/ring-seal.js';
import { netnsAvailable } from './helpers/netns.js';
import { CLIENT_PORT, SpreadLab } from './helpers/netns-spread.js';
import { SPREAD_LAN_TIMEOUTS } from './helpers/daemon.js';
import { udpDatagrams } from './helpers/pcap.js';
import { makeTestPki, ringKeyHex, writeRingKeys } from './helpers/security-files.js';
import { startAgreedLoad, waitForMembers } from './helpers/security-load.js';

const FIXTURES = resolve(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'security');
const SEGMENT_PORT = 4803;
const TLS_PORT = 4813;
const HTTP = '127.0.0.1:4880';
const SECRET = 'SECRET-MARKER-7f3a9c';
const CONTROL = 'PLAIN-CONTROL-MARKER-51d2';

const unavailable = netnsAvailable() ?? (commandExists('tcpdump') ? null : 'tcpdump is not installed (.ci/run installs it)');

function commandExists(command: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${command}`], { stdio: 'pipe' });
    return true;
  } catch {
    return false;
  }
}

let lab: SpreadLab | null = null;
let scratch: string;
let capturedFromD2: Buffer[] = [];
const sessions: Session[] = [];

/** A session on daemon `index`'s Unix socket (the test process is outside the namespaces). */
async function labSession(index: number, privateName: string): Promise<Session> {
  const session = await connect({ daemon: String(CLIENT_PORT), unixSocketDir: lab!.daemons[index].unixDir, privateName, timeoutMs: 10_000 });
  sessions.push(session);
  return session;
}

/** Counts data messages a session receives. */
function countData(session: Session): () => number {
  let count = 0;
  session.on('message', () => count++);
  return () => count;
}

/** A process's exit, bounded; SIGKILL by pid after `timeoutMs`. */
function exited(child: ChildProcess, timeoutMs: number): Promise<number | null> {
  return new Promise((done) => {
    if (child.exitCode !== null || child.signalCode !== null) return done(child.exitCode);
    const timer = setTimeout(() => child.pid !== undefined && process.kill(child.pid, 'SIGKILL'), timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      done(code);
    });
  });
}

function output(child: ChildProcess): () => string {
  let text = '';
  child.stdout?.on('data', (chunk) => (text += chunk));
  child.stderr?.on('data', (chunk) => (text += chunk));
  return () => text;
}

async function until(what: string, probe: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((wait) => setTimeout(wait, 50));
  }
}

/** A daemon's /status, fetched inside its namespace. */
function status(index: number): { ring: { members: number[]; membId: unknown; membershipChanges: number }; security: { ringDatagramsRejected: Record<string, number> } } {
  const text = execFileSync('ip', ['netns', 'exec', lab!.net.hostNs(index), 'curl', '-s', '--max-time', '5', `http://${HTTP}/status`], { encoding: 'utf8' });
  return JSON.parse(text);
}

beforeAll(async () => {
  if (unavailable !== null) return;
  scratch = mkdtempSync(join(tmpdir(), 'tspread-security-netns-'));
  writeRingKeys(join(scratch, 'ring.key'), [`current 1 ${ringKeyHex()}`]);
  // The client checks the daemon's certificate against the name localhost (tls-client.mjs).
  makeTestPki(scratch);
  lab = await SpreadLab.start(
    3,
    [
      ...SPREAD_LAN_TIMEOUTS,
      `RingKeyFile = "${join(scratch, 'ring.key')}"`,
      `TlsPort = ${TLS_PORT}`,
      `TlsCertificateFile = "${join(scratch, 'daemon.pem')}"`,
      `TlsKeyFile = "${join(scratch, 'daemon.key')}"`,
    ],
    { extraHosts: 1, daemonArgs: ['--http', HTTP] },
  );
  await until('one ring of three', () => [0, 1, 2].every((index) => status(index).ring.members.length === 3));
}, 120_000);

afterAll(async () => {
  await Promise.all(sessions.map((session) => session.disconnect().catch(() => undefined)));
  await lab?.destroy();
  if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true });
});

describe('sealed ring and TLS links on the wire', () => {
  it('a capture of ring traffic and of a TLS client link never holds the marker clients sent', async () => {
    expect(unavailable, unavailable ?? '').toBeNull();
    const labNow = lab!;
    const pcap = join(scratch, 'capture.pcap');
    const tcpdump = labNow.net.spawn(0, 'tcpdump', ['-i', labNow.net.device, '--immediate-mode', '-U', '-n', '-s', '0', '-B', '32768', '-w', pcap, `udp port ${SEGMENT_PORT} or udp port ${SEGMENT_PORT + 1} or tcp port ${TLS_PORT} or tcp port ${CLIENT_PORT}`], { stdio: ['ignore', 'pipe', 'pipe'] });
    const tcpdumpOutput = output(tcpdump);
    try {
      await until('tcpdump listening', () => tcpdumpOutput().includes('listening on'), 15_000);
      // Receivers on the other daemons: the marker crosses the ring from d1.
      const receivers = [await labSession(1, 'rx2'), await labSession(2, 'rx3')];
      const counts = receivers.map(countData);
      const joined = Promise.all(receivers.map((session) => waitForMembers(session, 'sniff', 3)));
      for (const session of receivers) session.join('sniff');
      const clientHost = 3;
      const tlsClient = labNow.net.spawn(
        clientHost,
        process.execPath,
        [join(FIXTURES, 'tls-client.mjs'), labNow.net.address(0), String(TLS_PORT), String(CLIENT_PORT), join(scratch, 'ca.pem'), SECRET, CONTROL, '200'],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      const clientOutput = output(tlsClient);
      await joined;
      // d2 sends too, so the capture holds d2's sealed data to d1 (the fuzzer replays it).
      for (let i = 0; i < 50; i++) receivers[0].multicast('sniff', `${SECRET}-d2-${i}-`.padEnd(1000, 'y'));
      expect(await exited(tlsClient, 60_000), clientOutput()).toBe(0);
      expect(clientOutput()).toContain('done 200');
      await until('the receivers got every message', () => counts.every((count) => count() >= 250), 30_000);
      // Every packet the filter took is written before tcpdump stops.
      await until('tcpdump caught up', () => existsSync(pcap) && statSync(pcap).size > 0, 5_000);
      await new Promise((wait) => setTimeout(wait, 500));
    } finally {
      if (tcpdump.pid !== undefined) process.kill(tcpdump.pid, 'SIGINT');
      await exited(tcpdump, 10_000);
    }
    const capture = readFileSync(pcap);
    const ring = udpDatagrams(capture).filter((datagram) => datagram.destinationPort === SEGMENT_PORT || datagram.destinationPort === SEGMENT_PORT + 1);
    expect(ring.length).toBeGreaterThan(10);
    expect(capture.includes(CONTROL), tcpdumpOutput()).toBe(true);
    expect(capture.includes(SECRET)).toBe(false);
    // Replay material for the fuzzer: d2's sealed datagrams to d1, split where a GSO send was captured whole.
    const fromD2 = ring.filter((datagram) => datagram.source === labNow.net.address(1) && datagram.destination === labNow.net.address(0));
    capturedFromD2 = fromD2.flatMap(({ payload }) => {
      const pieces: Buffer[] = [];
      for (let offset = 0; offset < payload.length; ) {
        const length = sealedLength(payload, offset);
        if (length === null) break;
        pieces.push(payload.subarray(offset, offset + length));
        offset += length;
      }
      return pieces;
    });
    expect(capturedFromD2.length).toBeGreaterThan(10);
  }, 120_000);

  it('forged, replayed, truncated and wrong-key datagrams during an AGREED load: one order, nothing lost, refusals counted', async () => {
    expect(unavailable, unavailable ?? '').toBeNull();
    expect(capturedFromD2.length).toBeGreaterThan(0);
    const labNow = lab!;
    const config = parseConfig(readFileSync(labNow.configPath, 'utf8'), 'spread.conf');
    const everyone = [await labSession(0, 's1'), await labSession(1, 's2'), await labSession(2, 'r3')];
    const joined = Promise.all(everyone.map((session) => waitForMembers(session, 'fuzzed', 3)));
    for (const session of everyone) session.join('fuzzed');
    await joined;
    const before = [0, 2].map(status);
    const load = startAgreedLoad(everyone.slice(0, 2), everyone, 'fuzzed', { count: 3000, bytes: 1000, burst: 20, pauseMs: 5 });
    // From d2's namespace (its address passes the source check), at d1 and d3's data and token ports.
    const spec = join(scratch, 'fuzz.json');
    const targets = [0, 2].flatMap((index) => [[labNow.net.address(index), SEGMENT_PORT], [labNow.net.address(index), SEGMENT_PORT + 1]]);
    writeFileSync(spec, JSON.stringify({ targets, captured: capturedFromD2.map((bytes) => bytes.toString('base64')), senderVid: config.daemons[1].vid, rounds: 150, pauseMs: 10 }));
    const fuzzer = labNow.net.spawn(1, process.execPath, [join(FIXTURES, 'fuzzer.mjs'), spec], { stdio: ['ignore', 'pipe', 'pipe'] });
    const fuzzerOutput = output(fuzzer);
    expect(await exited(fuzzer, 120_000), fuzzerOutput()).toBe(0);
    const sent = JSON.parse(fuzzerOutput().trim().split('\n').at(-1)!) as Record<string, number>;
    expect(Object.values(sent).reduce((sum, count) => sum + count, 0)).toBeGreaterThanOrEqual(4000);

    await load.sent;
    await load.delivered(120_000);
    expect(load.check()).toEqual([]);
    const after = [0, 2].map(status);
    for (const [at, now] of after.entries()) {
      expect(now.ring.members).toHaveLength(3);
      expect(now.ring.membId).toEqual(before[at].ring.membId);
      expect(now.ring.membershipChanges).toBe(before[at].ring.membershipChanges);
      const rejected = now.security.ringDatagramsRejected;
      const grew = (reason: string) => rejected[reason] - before[at].security.ringDatagramsRejected[reason];
      expect(grew('replay')).toBeGreaterThan(0);
      expect(grew('authentication')).toBeGreaterThan(0);
      expect(grew('malformed')).toBeGreaterThan(0);
      expect(grew('unknown-key')).toBeGreaterThan(0);
      expect(grew('unsealed')).toBeGreaterThan(0);
    }
    const metrics = execFileSync('ip', ['netns', 'exec', labNow.net.hostNs(0), 'curl', '-s', `http://${HTTP}/metrics`], { encoding: 'utf8' });
    expect(metrics).toMatch(/tspread_ring_datagrams_rejected_total\{reason="authentication",daemon="d1"\} [1-9]/);
  }, 240_000);
});
