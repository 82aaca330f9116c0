/**
 * Membership benchmark on real processes: N `tspread daemon` processes on 127.0.0.1, .2, …
 * (one ring, spread.conf without timeouts, i.e. tspread's defaults), measured from the
 * daemons' own ring notes ("ring … installed with …", stamped with the ring's clock):
 *
 *   crash  — SIGKILL the last daemon; time until every survivor has installed the ring of
 *            the survivors (kill → last survivor's install);
 *   merge  — start that daemon again; time from spawning the process until every daemon has
 *            installed the full ring (also shown: from the restarted ring's start, i.e. without
 *            Node's start-up);
 *   stable — with the full ring up, count membership changes during --stable seconds
 *            (a spurious change is any install in that window).
 *
 * Under `--load idle` nothing else runs; under `--load flood` every daemon has a
 * `tspread flooder` client (joins "flooder", sends --size-byte AGREED messages as fast as
 * its flow control allows, reads its own) for the whole run; the killed daemon's flooder
 * dies with it and a new one starts with the restarted daemon. Medians over --runs runs.
 *
 * Build first (`npx tsc -p .`), then:
 *
 *   node dist/bench/membership.js [--runs 5] [--loads idle,flood] [--daemons 3]
 *       [--size 1000] [--stable 5] [--json FILE]
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { flag, median } from './common.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const CLI = path.join(ROOT, 'dist/src/tools/cli.js');


const runs = Number(flag('runs', '5'));
const loads = flag('loads', 'idle,flood').split(',') as ('idle' | 'flood')[];
const count = Number(flag('daemons', '3'));
const size = Number(flag('size', '1000'));
const stableSeconds = Number(flag('stable', '5'));
const jsonPath = flag('json', '');
/** Extra Node options for the daemons (e.g. --daemon-node-args=--trace-gc), space separated. */
const daemonNodeArgs = (process.argv.find((a) => a.startsWith('--daemon-node-args='))?.slice('--daemon-node-args='.length) ?? '').split(' ').filter((a) => a !== '');
const WAIT_MS = 15_000;

interface Daemon {
  name: string;
  clientPort: number;
  process: ChildProcess;
  output: string;
  vid: number;
  flooder: ChildProcess | null;
}

interface Install {
  atMs: number;
  members: number[];
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

function installs(daemon: Daemon): Install[] {
  const out: Install[] = [];
  for (const line of daemon.output.split('\n')) {
    if (!line.includes(' installed with ')) continue;
    try {
      const entry = JSON.parse(line) as { atMs: number; msg: string };
      const members = entry.msg.slice(entry.msg.indexOf(' installed with ') + ' installed with '.length).split(', ').map(Number);
      out.push({ atMs: entry.atMs, members });
    } catch {
      // a partial line: read again later
    }
  }
  return out;
}

function noteAt(daemon: Daemon, text: string): number | null {
  for (const line of daemon.output.split('\n')) {
    if (!line.includes(text)) continue;
    try {
      return (JSON.parse(line) as { atMs: number }).atMs;
    } catch {
      return null;
    }
  }
  return null;
}

async function until<T>(what: string, probe: () => T | null, timeoutMs = WAIT_MS): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== null) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function startDaemon(index: number, configPath: string, dir: string, clientPort: number): Daemon {
  const name = `d${index + 1}`;
  const child = spawn(process.execPath, [...daemonNodeArgs, CLI, 'daemon', '-p', String(clientPort), '-c', configPath, '-n', name, '--unix-dir', dir], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const daemon: Daemon = { name, clientPort, process: child, output: '', vid: 0, flooder: null };
  child.stdout!.setEncoding('utf8');
  child.stderr!.setEncoding('utf8');
  child.stdout!.on('data', (text: string) => (daemon.output += text));
  child.stderr!.on('data', (text: string) => (daemon.output += text));
  return daemon;
}

async function ready(daemon: Daemon): Promise<void> {
  const line = await until(`${daemon.name} ready`, () => daemon.output.split('\n').find((l) => l.includes('"msg":"daemon ready"')) ?? null);
  daemon.vid = (JSON.parse(line) as { vid: number }).vid;
}

function startFlooder(daemon: Daemon, dir: string): void {
  daemon.flooder = spawn(
    process.execPath,
    [CLI, 'flooder', '-u', `f${daemon.name}`, '-s', String(daemon.clientPort), '--socket-dir', dir, '-m', '100000000', '-b', String(size), '--service', 'agreed'],
    { stdio: 'ignore' },
  );
}

function kill(child: ChildProcess | null): void {
  if (child !== null && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

/** The last install of every listed daemon since `afterMs` has exactly `members` (configuration order): the latest such time. */
function allInstalled(daemons: Daemon[], members: number[], afterMs: number): number | null {
  let latest = 0;
  for (const daemon of daemons) {
    const last = installs(daemon).filter((i) => i.atMs >= afterMs).at(-1);
    if (last === undefined || last.members.join(',') !== members.join(',')) return null;
    latest = Math.max(latest, last.atMs);
  }
  return latest;
}

interface RunResult {
  load: string;
  crashMs: number;
  mergeFromSpawnMs: number;
  mergeFromRingStartMs: number;
  spuriousChanges: number;
}

async function oneRun(load: 'idle' | 'flood'): Promise<RunResult> {
  const dir = mkdtempSync(path.join(tmpdir(), 'tspread-memb-'));
  const segmentPort = 20_000 + Math.floor(Math.random() * 20_000) * 2;
  const lines = Array.from({ length: count }, (_, i) => `\td${i + 1} 127.0.0.${i + 1}`);
  const configPath = path.join(dir, 'spread.conf');
  writeFileSync(configPath, [`Spread_Segment 127.0.0.255:${segmentPort} {`, ...lines, '}', ''].join('\n'));
  const ports: number[] = [];
  for (let i = 0; i < count; i++) ports.push(await freePort());
  const daemons = ports.map((port, i) => startDaemon(i, configPath, dir, port));
  try {
    await Promise.all(daemons.map(ready));
    const all = daemons.map((d) => d.vid);
    await until('the full ring', () => allInstalled(daemons, all, 0));
    if (load === 'flood') {
      for (const daemon of daemons) startFlooder(daemon, dir);
      await new Promise((resolve) => setTimeout(resolve, 1_500));
    }

    // Stable: no membership change for a while (under load, if any).
    const stableFrom = Date.now();
    await new Promise((resolve) => setTimeout(resolve, stableSeconds * 1000));
    // Notes reach the output within the daemon's diagnostics poll (500 ms).
    await new Promise((resolve) => setTimeout(resolve, 700));
    const spuriousChanges = daemons.reduce((n, d) => n + installs(d).filter((i) => i.atMs >= stableFrom && i.atMs < stableFrom + stableSeconds * 1000).length, 0);
    if (spuriousChanges > 0 || process.env.MEMBERSHIP_VERBOSE !== undefined) {
      for (const d of daemons) {
        if (process.env.MEMBERSHIP_GC !== undefined) {
          const pauses = d.output.split('\n').flatMap((l) => { const m = /MB, ([0-9.]+) \/ [0-9.]+ ms/.exec(l); return m === null ? [] : [{ ms: Number(m[1]), l }]; });
          pauses.sort((a, b) => b.ms - a.ms);
          console.error(`${d.name} GC: ${pauses.length} pauses, longest:\n${pauses.slice(0, 3).map((p) => p.l).join('\n')}`);
        }
        const notes = d.output.split('\n').filter((l) => l.includes('"msg":"ring: gather') || l.includes('consensus') || l.includes('ms late'));
        console.error(`${d.name}: ${notes.map((l) => { try { const j = JSON.parse(l) as { atMs: number; msg: string }; return `${j.atMs - stableFrom} ${j.msg}`; } catch { return l; } }).join(' | ')}`);
      }
    }

    // Crash the last daemon.
    const victim = daemons[count - 1];
    const survivors = daemons.slice(0, -1);
    const killAt = Date.now();
    kill(victim.process);
    kill(victim.flooder);
    const crashInstalled = await until('the survivors’ ring', () => allInstalled(survivors, survivors.map((d) => d.vid), killAt));
    const crashMs = crashInstalled - killAt;
    await new Promise((resolve) => setTimeout(resolve, 1_000));

    // Restart it: a fresh process, its state lost.
    const spawnAt = Date.now();
    const again = startDaemon(count - 1, configPath, dir, victim.clientPort);
    daemons[count - 1] = again;
    await ready(again);
    const merged = await until('the merged ring', () => allInstalled(daemons, all, spawnAt));
    const ringStart = await until('the restarted ring start', () => noteAt(again, 'gather (start)'));
    if (load === 'flood') startFlooder(again, dir);
    await new Promise((resolve) => setTimeout(resolve, 500));
    return {
      load,
      crashMs,
      mergeFromSpawnMs: merged - spawnAt,
      mergeFromRingStartMs: merged - ringStart,
      spuriousChanges,
    };
  } finally {
    for (const daemon of daemons) {
      kill(daemon.flooder);
      kill(daemon.process);
    }
    await new Promise((resolve) => setTimeout(resolve, 300));
    rmSync(dir, { recursive: true, force: true });
  }
}


async function main(): Promise<void> {
  const results: RunResult[] = [];
  for (const load of loads) {
    for (let run = 0; run < runs; run++) {
      const result = await oneRun(load);
      results.push(result);
      console.error(`${load} run ${run + 1}: crash ${result.crashMs} ms, merge ${result.mergeFromSpawnMs} ms from spawn (${result.mergeFromRingStartMs} ms from ring start), spurious changes ${result.spuriousChanges}`);
    }
  }
  console.log(`| load | crash → survivors' ring (ms) | restart → merged ring, from spawn (ms) | … from the ring's start (ms) | spurious changes in ${stableSeconds} s | runs |`);
  console.log('|---|---|---|---|---|---|');
  for (const load of loads) {
    const of = results.filter((r) => r.load === load);
    const range = (key: keyof RunResult) => {
      const values = of.map((r) => r[key] as number);
      return `${median(values).toFixed(0)} (${Math.min(...values).toFixed(0)}–${Math.max(...values).toFixed(0)})`;
    };
    console.log(`| ${load} | ${range('crashMs')} | ${range('mergeFromSpawnMs')} | ${range('mergeFromRingStartMs')} | ${of.reduce((n, r) => n + r.spuriousChanges, 0)} | ${of.length} |`);
  }
  if (jsonPath !== '') writeFileSync(jsonPath, JSON.stringify(results, null, 2));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
