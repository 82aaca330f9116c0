/**
 * The session cache against memcached, measured in the same run on this host:
 *   get latency:  one connection, one `get` of a 1 KiB value at a time (p50, p99 in µs);
 *   get pipeline: one connection, `--pipeline` gets in flight, gets/s;
 *   set latency:  one connection, one `set` at a time until STORED (tspread answers once
 *                 the group has ordered it);
 *   visibility:   three daemons (127.0.0.1, .2, .3) with a cache each: time from writing a
 *                 `set` to cache A until a client polling cache B back to back reads it.
 * memcached (Debian's /usr/bin/memcached, one instance, 4 threads) has no replication,
 * so it has no visibility figure. Each figure is the median of --runs runs.
 *
 * Build first (`npx tsc -p .`), then:
 *
 *   node dist/bench/session-cache.js [--runs 3] [--gets 20000] [--pipeline-gets 200000] [--pipeline 1000] [--sets 2000] [--visibility 300]
 */
import { spawn } from 'node:child_process';
import * as net from 'node:net';
import { freePort, startRing } from '../test/helpers/daemon.js';
import { MemcacheClient, startSessionCache, waitForSync, type RunningCache } from '../test/helpers/session-caches.js';
import { exitWithUsageIfAsked, flag, median } from './common.js';

exitWithUsageIfAsked(import.meta.url);

const runs = Number(flag('runs', '3'));
const getCount = Number(flag('gets', '20000'));
const pipelineGets = Number(flag('pipeline-gets', '200000'));
const inFlight = Number(flag('pipeline', '1000'));
const setCount = Number(flag('sets', '2000'));
const visibilityCount = Number(flag('visibility', '300'));
const VALUE = Buffer.alloc(1024, 'v');

function percentile(values: number[], fraction: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))]!;
}

const microseconds = (start: bigint) => Number(process.hrtime.bigint() - start) / 1000;

async function getLatency(port: number): Promise<{ p50: number; p99: number }> {
  const client = await MemcacheClient.connect(port);
  await client.set('bench-key', VALUE);
  const samples: number[] = [];
  for (let index = 0; index < getCount; index++) {
    const start = process.hrtime.bigint();
    if ((await client.get('bench-key')) === null) throw new Error('bench-key missing');
    samples.push(microseconds(start));
  }
  client.close();
  return { p50: percentile(samples, 0.5), p99: percentile(samples, 0.99) };
}

/** Keeps `inFlight` gets outstanding on one connection; counts replies by their END lines. */
function getPipeline(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    const request = Buffer.from('get bench-key\r\n');
    const batch = Buffer.concat(Array.from({ length: 100 }, () => request));
    let sent = 0;
    let answered = 0;
    let carry = '';
    let start = 0n;
    const top = () => {
      while (sent < pipelineGets && sent - answered < inFlight) {
        socket.write(batch);
        sent += 100;
      }
    };
    socket.setNoDelay(true);
    socket.on('connect', () => {
      start = process.hrtime.bigint();
      top();
    });
    socket.setEncoding('latin1').on('data', (text: string) => {
      const chunk = carry + text;
      let at = chunk.indexOf('END\r\n');
      let last = 0;
      while (at >= 0) {
        answered += 1;
        last = at + 5;
        at = chunk.indexOf('END\r\n', last);
      }
      carry = chunk.slice(Math.max(last, chunk.length - 4));
      if (answered >= pipelineGets) {
        const seconds = Number(process.hrtime.bigint() - start) / 1e9;
        socket.destroy();
        resolve(answered / seconds);
      } else top();
    });
    socket.once('error', reject);
  });
}

async function setLatency(port: number): Promise<number> {
  const client = await MemcacheClient.connect(port);
  const samples: number[] = [];
  for (let index = 0; index < setCount; index++) {
    const start = process.hrtime.bigint();
    if ((await client.set(`bench-set-${index % 100}`, VALUE)) !== 'STORED') throw new Error('set failed');
    samples.push(microseconds(start));
  }
  client.close();
  return percentile(samples, 0.5);
}

async function visibility(writerPort: number, readerPort: number): Promise<{ p50: number; p99: number }> {
  const writer = await MemcacheClient.connect(writerPort);
  const reader = await MemcacheClient.connect(readerPort);
  const samples: number[] = [];
  for (let index = 0; index < visibilityCount; index++) {
    const key = `seen-${Date.now()}-${index}`;
    const start = process.hrtime.bigint();
    const stored = writer.set(key, VALUE);
    while ((await reader.get(key)) === null) {
      if (microseconds(start) > 5_000_000) throw new Error(`${key} not visible after 5 s`);
    }
    samples.push(microseconds(start));
    await stored;
  }
  writer.close();
  reader.close();
  return { p50: percentile(samples, 0.5), p99: percentile(samples, 0.99) };
}

async function startMemcached(): Promise<{ port: number; stop: () => void }> {
  const port = await freePort({ from: 25300, to: 25399 });
  const child = spawn('/usr/bin/memcached', ['-l', '127.0.0.1', '-p', String(port), '-U', '0', '-u', 'root', '-m', '64', '-t', '4'], { stdio: 'ignore' });
  for (let attempt = 0; attempt < 100; attempt++) {
    try {
      (await MemcacheClient.connect(port)).close();
      return { port, stop: () => child.kill('SIGTERM') };
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  child.kill('SIGKILL');
  throw new Error('memcached did not start');
}

interface Figures {
  getP50: number;
  getP99: number;
  getsPerSecond: number;
  setP50: number;
  visibleP50?: number;
  visibleP99?: number;
}

async function measure(port: number, otherPort?: number): Promise<Figures> {
  const get = await getLatency(port);
  const getsPerSecond = await getPipeline(port);
  const setP50 = await setLatency(port);
  const figures: Figures = { getP50: get.p50, getP99: get.p99, getsPerSecond, setP50 };
  if (otherPort !== undefined) {
    const seen = await visibility(port, otherPort);
    figures.visibleP50 = seen.p50;
    figures.visibleP99 = seen.p99;
  }
  return figures;
}

function summary(name: string, all: Figures[]): void {
  const pick = (field: keyof Figures) => {
    const values = all.map((figures) => figures[field]).filter((value): value is number => value !== undefined);
    return values.length === 0 ? '—' : median(values).toFixed(field === 'getsPerSecond' ? 0 : 1);
  };
  console.log(
    `| ${name} | ${pick('getP50')} | ${pick('getP99')} | ${pick('getsPerSecond')} | ${pick('setP50')} | ${pick('visibleP50')} | ${pick('visibleP99')} |`,
  );
}

const ring = await startRing({ count: 3 });
const caches: RunningCache[] = [];
const memcached = await startMemcached();
try {
  for (const daemon of ring.daemons) {
    const cache = await startSessionCache(daemon, 'bench-splash', await freePort({ from: 25100, to: 25199 }));
    caches.push(cache);
  }
  await Promise.all(caches.map((cache) => waitForSync(cache).catch(() => undefined)));
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const tspread: Figures[] = [];
  const reference: Figures[] = [];
  for (let run = 0; run < runs; run++) {
    tspread.push(await measure(caches[0]!.port, caches[1]!.port));
    reference.push(await measure(memcached.port));
    console.error(`run ${run + 1}: tspread ${JSON.stringify(tspread[run])} memcached ${JSON.stringify(reference[run])}`);
  }
  console.log(`gets ${getCount}, pipeline ${pipelineGets} gets with ${inFlight} in flight, sets ${setCount}, visibility ${visibilityCount} keys, 1 KiB values, median of ${runs} runs`);
  console.log('| cache | get p50 µs | get p99 µs | pipelined gets/s | set p50 µs | visible at B p50 µs | visible at B p99 µs |');
  console.log('| --- | --- | --- | --- | --- | --- | --- |');
  summary('tspread session-cache (3 daemons)', tspread);
  summary('memcached 1.6 (-t 4)', reference);
} finally {
  memcached.stop();
  await Promise.all(caches.map((cache) => cache.stop()));
  await ring.stop();
}
