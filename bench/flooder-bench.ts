/**
 * Flooder benchmark against one daemon: for each message size and service,
 * (a) one sender (-wo) → one receiver (-ro) and (b) one flooder reading its own
 * messages, both over the Unix socket; 3 runs each, medians printed as a
 * Markdown table. Build first (`npx tsc -p .`), then:
 *
 *   node dist/bench/flooder-bench.js [--sizes 100,1000,10000] [--services agreed,...]
 *       [--runs 3] [--modes pair,self] [--transport unix|tcp] [--port 24990] [--scale 1]
 *
 * It starts its own `tspread daemon` (or uses `--daemon-running` on --port).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect } from '../src/client/index.js';
import type { FlooderReport } from '../src/tools/flooder.js';
import { flag, median } from './common.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const CLI = path.join(ROOT, 'dist/src/tools/cli.js');


const sizes = flag('sizes', '100,1000,10000').split(',').map(Number);
const services = flag('services', 'unreliable,reliable,fifo,causal,agreed,safe').split(',');
const modes = flag('modes', 'pair,self').split(',');
const runs = Number(flag('runs', '3'));
const port = Number(flag('port', '24990'));
const transport = flag('transport', 'unix');
const scale = Number(flag('scale', '1'));
const daemonRunning = process.argv.includes('--daemon-running');
const socketDir = flag('socket-dir', fs.mkdtempSync(path.join(os.tmpdir(), 'tspread-bench-')));
const server = transport === 'tcp' ? `${port}@127.0.0.1` : String(port);
/** Messages per run: about a second of traffic at the target rates. */
const messagesFor = (bytes: number) => Math.round(scale * (bytes <= 100 ? 200_000 : bytes <= 1000 ? 100_000 : 20_000));

function run(args: string[]): { child: ChildProcess; result: Promise<FlooderReport> } {
  const child = spawn(process.execPath, [CLI, 'flooder', '-s', server, '--socket-dir', socketDir, '--json', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (chunk) => (out += chunk));
  child.stderr!.on('data', (chunk) => (err += chunk));
  const result = new Promise<FlooderReport>((resolve, reject) =>
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`flooder ${args.join(' ')} exited ${code}: ${err}`)))),
  );
  return { child, result };
}

async function startDaemon(): Promise<ChildProcess | null> {
  if (daemonRunning) return null;
  const config = path.join(socketDir, 'spread.conf');
  fs.writeFileSync(config, `Spread_Segment 127.0.0.255:${port} {\n\tlocalhost 127.0.0.1\n}\n`);
  const child = spawn(process.execPath, [CLI, 'daemon', '-c', config, '-p', String(port), '--unix-dir', socketDir], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (chunk) => {
      out += chunk;
      if (out.includes('daemon ready')) resolve();
    });
    child.on('exit', (code) => reject(new Error(`daemon exited ${code}: ${out}`)));
  });
  child.stdout!.resume();
  return child;
}

let unique = 0;
async function pairRun(bytes: number, service: string): Promise<FlooderReport> {
  const id = ++unique;
  const watcher = await connect({ daemon: server, unixSocketDir: socketDir, privateName: `w${id}` });
  const joined = new Promise<void>((resolve) =>
    watcher.on('membership', (message) => {
      if (message.members.includes(`#r${id}#localhost`)) resolve();
    }),
  );
  watcher.join('flooder');
  const common = ['-m', String(messagesFor(bytes)), '-b', String(bytes), '--service', service];
  const receiver = run(['-ro', '-u', `r${id}`, ...common]);
  await joined;
  await watcher.disconnect();
  const sender = run(['-wo', '-u', `s${id}`, ...common]);
  const [, received] = await Promise.all([sender.result, receiver.result]);
  return received;
}

async function selfRun(bytes: number, service: string): Promise<FlooderReport> {
  const id = ++unique;
  return run(['-u', `f${id}`, '-m', String(messagesFor(bytes)), '-b', String(bytes), '--service', service]).result;
}


const daemon = await startDaemon();
process.on('exit', () => daemon?.kill('SIGTERM'));
try {
  console.log(`| mode | bytes | service | msgs/s | Mbit/s | p50 ms | p99 ms |`);
  console.log(`|---|---:|---|---:|---:|---:|---:|`);
  for (const mode of modes) {
    for (const bytes of sizes) {
      for (const service of services) {
        const reports: FlooderReport[] = [];
        for (let i = 0; i < runs; i++) reports.push(await (mode === 'pair' ? pairRun(bytes, service) : selfRun(bytes, service)));
        const label = mode === 'pair' ? `1 → 1 (${transport})` : `self (${transport})`;
        console.log(
          `| ${label} | ${bytes} | ${service.toUpperCase()} | ${Math.round(median(reports.map((r) => r.msgsPerSec)))} | ` +
            `${median(reports.map((r) => r.mbitPerSec)).toFixed(0)} | ${median(reports.map((r) => r.latencyMs?.p50 ?? NaN)).toFixed(2)} | ` +
            `${median(reports.map((r) => r.latencyMs?.p99 ?? NaN)).toFixed(2)} |`,
        );
      }
    }
  }
} finally {
  daemon?.kill('SIGTERM');
}
