/**
 * End-to-end throughput of the logging app on one host: `tspread log-send` fed from a file
 * (stdin redirected from it) to `tspread logd` collectors writing files, over Unix sockets.
 *   solo: one daemon, one collector.
 *   ring: three daemons (d1 127.0.0.1, d2 .2, d3 .3), log-send on d1, collectors on d2 and d3.
 * Time runs from starting log-send to the last collector's file holding every byte (so it
 * includes log-send's start-up); lines/s = lines / that time. The files are then checked:
 * byte-identical to the input. Each figure is the median of --runs runs.
 *
 * Build first (`npx tsc -p .`), then:
 *
 *   node dist/bench/logging.js [--lines 1000000] [--bytes 200] [--runs 3] [--layouts solo,ring] [--service agreed]
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, createReadStream, existsSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { CLI_PATH, freePort, soloConfig, startDaemon, startRing, type StartedDaemon } from '../test/helpers/daemon.js';
import { exitWithUsageIfAsked, flag, median } from './common.js';

exitWithUsageIfAsked(import.meta.url);

const lineCount = Number(flag('lines', '1000000'));
const lineBytes = Number(flag('bytes', '200'));
const runs = Number(flag('runs', '3'));
const layouts = flag('layouts', 'solo,ring').split(',');
const service = flag('service', 'agreed');
const TIMEOUT_MS = 300_000;

/** Combined-format-looking lines of exactly lineBytes bytes (newline included). */
function writeInput(path: string): void {
  const lines: string[] = [];
  for (let index = 0; index < lineCount; index++) {
    const head = `10.0.${(index >> 8) & 255}.${index & 255} - - [04/Dec/2026:18:00:00 +0000] "GET /item/${index} HTTP/1.1" 200 512 "-" "bench `;
    lines.push(head.padEnd(lineBytes - 2, 'x') + '"\n');
  }
  writeFileSync(path, lines.join(''));
}

function sha1(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha1');
    createReadStream(path).on('data', (chunk) => hash.update(chunk)).on('end', () => resolve(hash.digest('hex'))).on('error', reject);
  });
}

interface Tool {
  output: () => string;
  exited: Promise<number | null>;
  stop: () => Promise<void>;
}

function startTool(args: string[], stdin: 'ignore' | number = 'ignore'): Tool {
  const child = spawn(process.execPath, [CLI_PATH, ...args], { stdio: [stdin, 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.setEncoding('utf8').on('data', (text: string) => (output += text));
  child.stderr?.setEncoding('utf8').on('data', (text: string) => (output += text));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    output: () => output,
    exited,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

async function waitFor(condition: () => boolean, what: () => string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what()}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** One run: collectors on `collectorDaemons`, log-send on `senderDaemon`; returns seconds. */
async function run(dir: string, input: string, senderDaemon: StartedDaemon, collectorDaemons: StartedDaemon[]): Promise<number> {
  const files = collectorDaemons.map((_, index) => join(dir, `out-${index}.log`));
  for (const file of files) rmSync(file, { force: true });
  const collectors = collectorDaemons.map((daemon, index) => {
    const config = join(dir, `logd-${index}.conf`);
    writeFileSync(config, `BufferSize = 1048576\nSpread {\n  Port = ${daemon.port}\n  Log { Group = bench File = ${files[index]} }\n}\n`);
    return startTool(['logd', '-c', config, '--socket-dir', dirname(daemon.unixPath)]);
  });
  const expected = collectorDaemons.length;
  for (const collector of collectors) {
    await waitFor(() => new RegExp(`"collectors":${expected},"msg":"view"`).test(collector.output()), collector.output);
  }
  const inputFd = openSync(input, 'r');
  const totalBytes = lineCount * lineBytes;
  const start = process.hrtime.bigint();
  const sender = startTool(
    ['log-send', '-g', 'bench', '-s', String(senderDaemon.port), '--socket-dir', dirname(senderDaemon.unixPath), '--collectors', String(expected), '--service', service],
    inputFd,
  );
  closeSync(inputFd);
  const size = (file: string) => (existsSync(file) ? statSync(file).size : 0);
  await waitFor(() => files.every((file) => size(file) >= totalBytes), () => `${files.map(size).join(', ')} of ${totalBytes}\n${sender.output()}`, TIMEOUT_MS);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  if ((await sender.exited) !== 0) throw new Error(`log-send failed:\n${sender.output()}`);
  await Promise.all(collectors.map((collector) => collector.stop()));
  const inputHash = await sha1(input);
  for (const file of files) {
    if (size(file) !== totalBytes || (await sha1(file)) !== inputHash) throw new Error(`${file} differs from the input`);
  }
  return seconds;
}

const dir = mkdtempSync(join(tmpdir(), 'tspread-bench-logging-'));
try {
  const input = join(dir, 'input.log');
  writeInput(input);
  console.log(`${lineCount} lines of ${lineBytes} bytes, ${service}, median of ${runs} runs\n`);
  console.log('| layout | lines/s | MB/s | seconds (median) |');
  console.log('|---|---:|---:|---:|');
  for (const layout of layouts) {
    const seconds: number[] = [];
    if (layout === 'solo') {
      const port = await freePort();
      const daemon = await startDaemon({ port, config: soloConfig(port) });
      try {
        for (let index = 0; index < runs; index++) seconds.push(await run(dir, input, daemon, [daemon]));
      } finally {
        await daemon.stop();
      }
    } else {
      const ring = await startRing({ count: 3 });
      try {
        await new Promise((resolve) => setTimeout(resolve, 2000)); // let the ring form
        for (let index = 0; index < runs; index++) seconds.push(await run(dir, input, ring.daemons[0], ring.daemons.slice(1)));
      } finally {
        await ring.stop();
      }
    }
    const middle = median(seconds);
    const label = layout === 'solo' ? '1 daemon, 1 collector' : '3 daemons, 2 collectors';
    console.log(`| ${label} | ${Math.round(lineCount / middle)} | ${((lineCount * lineBytes) / middle / 1e6).toFixed(1)} | ${middle.toFixed(2)} (${seconds.map((value) => value.toFixed(2)).join(', ')}) |`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
