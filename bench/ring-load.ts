/**
 * The ring under load from every side (issue: no healthy reader cut). Three real daemons on
 * 127.0.0.1–3; on each a counting receiver (`tspread flooder -ro`; TCP on d1 and d3, Unix
 * socket on d2) and, at the same time, an unthrottled writer (`flooder -wo`) per daemon.
 *
 *   npx tsc -p . && node dist/bench/ring-load.js [--runs 5] [--messages 10000] [--bytes 1000]
 *       [--service agreed]
 *
 * Per run: whether every receiver got every message, cuts logged, the slowest receiver's
 * msgs/s; baseline in the same run: one writer on d1 sending as many messages as the three
 * together. Then, in a fresh ring, the same three writers with a fourth receiver on d1 that is
 * stopped (SIGSTOP) before they start: when it is cut, why, and d1's peak RSS against its RSS
 * before the flood. Prints Markdown.
 */
import { readFileSync } from 'node:fs';
import { startRing, type StartedRing } from '../test/helpers/daemon.js';
import { cutLines, floodWriter, peakRssKb, startFloodReceivers, type FloodOptions } from '../test/helpers/flooders.js';
import { exitWithUsageIfAsked, flag, median } from './common.js';

exitWithUsageIfAsked(import.meta.url);

const runs = Number(flag('runs', '5'));
const messages = Number(flag('messages', '10000'));
const bytes = Number(flag('bytes', '1000'));
const service = flag('service', 'agreed');

interface Outcome {
  complete: boolean;
  slowestMsgsPerSec: number;
  seconds: number;
}

/** One flood: `writers` (daemon indexes), each sending `perWriter`; receivers on d1, d2, d3. */
async function flood(ring: StartedRing, writers: number[], perWriter: number, tag: string): Promise<Outcome> {
  const total = writers.length * perWriter;
  const options: FloodOptions = { messages: perWriter, bytes, service, senders: writers.length };
  const receivers = await startFloodReceivers(ring, ['r1', 'r2', 'r3'].map((name) => `${name}${tag}`), options);
  const started = process.hrtime.bigint();
  const tools = writers.map((index) => floodWriter(ring, index, `w${index + 1}${tag}`, options));
  try {
    await Promise.all([...tools, ...receivers].map((tool) => tool.exited));
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const reports = receivers.map(reportOf);
    return {
      complete: reports.every((report) => report.received === total),
      slowestMsgsPerSec: Math.min(...reports.map((report) => report.msgsPerSec)),
      seconds,
    };
  } finally {
    for (const tool of [...tools, ...receivers]) tool.kill();
  }
}

/** A flooder's JSON report; a receiver that was cut printed none and counts as having nothing. */
function reportOf(tool: { stdout: string }): { received: number; msgsPerSec: number } {
  return tool.stdout.trim().startsWith('{') ? JSON.parse(tool.stdout) : { received: 0, msgsPerSec: 0 };
}

const rssKb = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);

async function concurrentWriters(): Promise<void> {
  const ring = await startRing();
  try {
    const three: Outcome[] = [];
    const one: Outcome[] = [];
    for (let run = 0; run < runs; run++) {
      three.push(await flood(ring, [0, 1, 2], messages, `a${run}`));
      one.push(await flood(ring, [0], 3 * messages, `b${run}`));
      console.error(`run ${run + 1}: three writers ${Math.round(three[run].slowestMsgsPerSec)} msgs/s, one writer ${Math.round(one[run].slowestMsgsPerSec)} msgs/s`);
    }
    const rate = (outcomes: Outcome[]) => median(outcomes.map((outcome) => outcome.slowestMsgsPerSec));
    console.log(`\n### ${3 * messages} × ${bytes} B ${service.toUpperCase()}, receivers on d1, d2, d3 (median of ${runs})\n`);
    console.log('| writers | runs with every message at every receiver | cuts logged | slowest receiver msgs/s | vs one writer |');
    console.log('|---|---|---|---|---|');
    const cuts = cutLines(ring).length;
    console.log(`| 3 (one per daemon) | ${three.filter((o) => o.complete).length}/${runs} | ${cuts} | ${Math.round(rate(three))} | ${rate(one) > 0 ? `${(rate(three) / rate(one)).toFixed(2)}×` : '–'} |`);
    console.log(`| 1 (on d1, same total) | ${one.filter((o) => o.complete).length}/${runs} | ${cuts} | ${Math.round(rate(one))} | 1.00× |`);
  } finally {
    await ring.stop();
  }
}

async function stoppedReader(): Promise<void> {
  const ring = await startRing();
  try {
    const d1 = ring.daemons[0].process.pid!;
    const before = rssKb(d1);
    const options: FloodOptions = { messages, bytes, service, senders: 3 };
    const receivers = await startFloodReceivers(ring, ['k1', 'k2', 'k3', 'stop'], options);
    receivers[3].child.kill('SIGSTOP');
    const started = Date.now();
    const writers = [0, 1, 2].map((index) => floodWriter(ring, index, `v${index + 1}`, options));
    try {
      await Promise.all([...writers, ...receivers.slice(0, 3)].map((tool) => tool.exited));
      const others = receivers.slice(0, 3).map(reportOf);
      await ring.daemons[0].waitForOutput('"name":"#stop#d1"', 15_000);
      const cut = JSON.parse(cutLines(ring)[0]);
      console.log(`\n### A stopped reader (SIGSTOP) on d1 during the same flood\n`);
      console.log('| others got everything | stopped reader cut after | why | d1 RSS before | d1 peak RSS |');
      console.log('|---|---|---|---|---|');
      const everything = others.every((report) => report.received === 3 * messages);
      console.log(
        `| ${everything ? 'yes' : 'NO'} | ${((cut.time - started) / 1000).toFixed(1)} s | ${cut.why} | ${(before / 1024).toFixed(0)} MiB | ${(peakRssKb(d1) / 1024).toFixed(0)} MiB |`,
      );
    } finally {
      receivers[3].child.kill('SIGCONT');
      for (const tool of [...writers, ...receivers]) tool.kill();
    }
  } finally {
    await ring.stop();
  }
}

await concurrentWriters();
await stoppedReader();
