/**
 * tspread/messaging on three daemons (127.0.0.1, .2, .3) on loopback, each client
 * its own process:
 *   queue:    3 producers (one per daemon) send --messages 1 KiB messages in all to
 *             one queue; 3 competing consumers (one per daemon, prefetch --prefetch)
 *             take them; messages/s from the producers' start until all are consumed;
 *   baseline: the same through the same daemons without the library: 3 senders
 *             multicast --messages AGREED 1 KiB Spread messages to a group of 3
 *             plain receivers; messages/s until every receiver has all of them;
 *   ask:      one replier and one asker on d1, --asks sequential ask() round trips
 *             (p50, p99 in µs);
 *   state:    the work every queue member does per message, alone in this process:
 *             16 KiB publish batches of 1 KiB records applied to a QueueState with 3
 *             consumers, acknowledged in batches (ns per message).
 * Each figure is the median of --runs runs.
 *
 * Build first (`npx tsc -p .`), then:
 *
 *   node dist/bench/messaging.js [--runs 3] [--messages 150000] [--prefetch 20000] [--asks 3000]
 *
 * To profile every process (daemons, clients): `node --cpu-prof --cpu-prof-dir DIR
 * dist/bench/messaging.js --daemon-profile-dir DIR …` (clients inherit the flags).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { connect } from '../src/client/index.js';
import { Messaging, QueueState } from '../src/apps/messaging/index.js';
import { encodeRecord } from '../src/apps/messaging/envelope.js';
import { applyOperation, encodeAcks, encodeRegister, PUBLISH } from '../src/apps/messaging/operations.js';
import { SPREAD_LAN_TIMEOUTS, startRing, type StartedRing } from '../test/helpers/daemon.js';
import { waitForRing } from '../test/helpers/messaging.js';
import { exitWithUsageIfAsked, flag, median } from './common.js';

exitWithUsageIfAsked(import.meta.url);

const runs = Number(flag('runs', '3'));
const messages = Number(flag('messages', '150000'));
const prefetch = Number(flag('prefetch', '20000'));
const askCount = Number(flag('asks', '3000'));
const role = flag('role', 'main');
const daemon = flag('daemon', '');
const name = flag('name', 'bench');
const daemonProfileDir = flag('daemon-profile-dir', '');
const BODY = Buffer.alloc(1024, 'm');

type ChildReport = { ready: true } | { count: number };

/** A child process of this script in `childRole`; resolves once it says it is ready. */
async function child(childRole: string, args: string[]): Promise<{ process: ChildProcess; count: () => number }> {
  const process_ = fork(fileURLToPath(import.meta.url), ['--role', childRole, ...args], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  let count = 0;
  await new Promise<void>((resolve, reject) => {
    process_.on('message', (report: ChildReport) => {
      if ('ready' in report) resolve();
      else count = report.count;
    });
    process_.once('exit', (code) => reject(new Error(`${childRole} exited with ${code}`)));
  });
  return { process: process_, count: () => count };
}

/** Reports a count to the parent every 20 ms while it changes (IPC is not free: it was 4% of a consumer's CPU). */
function reportCount(read: () => number): void {
  let reported = -1;
  setInterval(() => {
    const count = read();
    if (count !== reported) process.send!({ count: (reported = count) });
  }, 20).unref();
}

async function waitForGo(): Promise<void> {
  await new Promise<void>((resolve) => process.once('message', () => resolve()));
}

async function consumerRole(): Promise<void> {
  const mq = await Messaging.connect({ daemon });
  let count = 0;
  await mq.consume(name, () => void count++, { prefetch });
  reportCount(() => count);
  process.send!({ ready: true });
}

async function producerRole(): Promise<void> {
  const mq = await Messaging.connect({ daemon });
  process.send!({ ready: true });
  await waitForGo();
  const share = Number(flag('share', '0'));
  for (let index = 0; index < share; index++) if (!mq.send(name, BODY)) await mq.drained();
  await mq.drained();
}

async function receiverRole(): Promise<void> {
  const session = await connect({ daemon });
  let count = 0;
  session.on('message', () => void count++);
  await new Promise<void>((resolve) => {
    session.on('membership', (message) => {
      if (message.group === name && message.members.length >= 3) resolve();
    });
    session.join(name);
  });
  reportCount(() => count);
  process.send!({ ready: true });
}

async function senderRole(): Promise<void> {
  const session = await connect({ daemon });
  process.send!({ ready: true });
  await waitForGo();
  const share = Number(flag('share', '0'));
  for (let index = 0; index < share; index++) {
    if (!session.multicast(name, BODY, { service: 'agreed' })) await session.drained();
  }
  await session.drained();
}

async function replierRole(): Promise<void> {
  const mq = await Messaging.connect({ daemon });
  await mq.consume(name, (message) => message.reply(message.body));
  process.send!({ ready: true });
}

const address = (ring: StartedRing, index: number) => `${ring.daemons[index]!.port}@127.0.0.1`;

/**
 * Starts `receivers` (each counting what it gets) and then the senders, and returns
 * messages/s from the go signal until the receivers' counts add up to `expected`.
 */
async function measure(ring: StartedRing, receiverRole_: string, senderRole_: string, group: string, expected: number): Promise<number> {
  const receivers = await Promise.all([0, 1, 2].map((index) => child(receiverRole_, ['--daemon', address(ring, index), '--name', group, '--prefetch', String(prefetch)])));
  const share = Math.ceil(messages / 3);
  const senders = await Promise.all([0, 1, 2].map((index) => child(senderRole_, ['--daemon', address(ring, index), '--name', group, '--share', String(share)])));
  const start = process.hrtime.bigint();
  for (const sender of senders) sender.process.send('go');
  const total = () => receivers.reduce((sum, receiver) => sum + receiver.count(), 0);
  while (total() < expected) await new Promise((resolve) => setTimeout(resolve, 5));
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  // SIGTERM ends a child with process.exit, so `node --cpu-prof` writes its profile.
  for (const started of [...receivers, ...senders]) started.process.kill('SIGTERM');
  return (3 * share) / seconds;
}

async function askLatency(ring: StartedRing, queue: string): Promise<{ p50: number; p99: number }> {
  const replier = await child('replier', ['--daemon', address(ring, 0), '--name', queue]);
  const asker = await Messaging.connect({ daemon: address(ring, 0) });
  const samples: number[] = [];
  try {
    for (let index = 0; index < askCount; index++) {
      const start = process.hrtime.bigint();
      await asker.ask(queue, BODY, { timeoutMs: 5000 });
      if (index >= Math.floor(askCount / 10)) samples.push(Number(process.hrtime.bigint() - start) / 1000);
    }
  } finally {
    await asker.close();
    replier.process.kill('SIGTERM');
  }
  samples.sort((a, b) => a - b);
  return { p50: samples[Math.floor(samples.length / 2)]!, p99: samples[Math.floor(samples.length * 0.99)]! };
}

/** Nanoseconds per message of applying publish batches and acks to one member's state. */
function stateCost(count: number): number {
  const record = encodeRecord({ body: BODY });
  const perBatch = Math.floor(16 * 1024 / (record.length + 4));
  const batch = Buffer.alloc(1 + perBatch * (record.length + 4));
  batch[0] = PUBLISH;
  for (let index = 0; index < perBatch; index++) {
    batch.writeUInt32LE(record.length, 1 + index * (record.length + 4));
    record.copy(batch, 5 + index * (record.length + 4));
  }
  const state = new QueueState();
  const owned = new Map<string, number[]>(['#a#d1', '#b#d2', '#c#d3'].map((name) => [name, []]));
  for (const name of owned.keys()) applyOperation(state, encodeRegister(name, prefetch));
  state.onAssign = (entry) => owned.get(entry.owner!)!.push(entry.id);
  const start = process.hrtime.bigint();
  for (let sent = 0, batches = 0; sent < count; sent += perBatch, batches++) {
    // A copy, as each Spread message arrives in its own buffer.
    applyOperation(state, Buffer.from(batch));
    if (batches % 4 === 3) {
      for (const [name, ids] of owned) {
        if (ids.length > 0) applyOperation(state, encodeAcks(name, ids.splice(0)));
      }
    }
  }
  return Number(process.hrtime.bigint() - start) / count;
}

async function main(): Promise<void> {
  const nodeArgs = daemonProfileDir === '' ? undefined : ['--cpu-prof', '--cpu-prof-dir', daemonProfileDir];
  const ring = await startRing({ count: 3, extraLines: SPREAD_LAN_TIMEOUTS, nodeArgs });
  try {
    await waitForRing(ring);
    const queueRates: number[] = [];
    const baselineRates: number[] = [];
    const askP50: number[] = [];
    const askP99: number[] = [];
    const stateNs: number[] = [];
    for (let run = 0; run < runs; run++) {
      stateNs.push(stateCost(messages));
      const share = Math.ceil(messages / 3);
      baselineRates.push(await measure(ring, 'receiver', 'sender', `flood${run}`, 3 * 3 * share));
      queueRates.push(await measure(ring, 'consumer', 'producer', `q${run}`, 3 * share));
      const ask = await askLatency(ring, `ask${run}`);
      askP50.push(ask.p50);
      askP99.push(ask.p99);
      console.error(`run ${run + 1}: queue ${Math.round(queueRates[run]!)} msgs/s, baseline ${Math.round(baselineRates[run]!)} msgs/s, ask p50 ${ask.p50.toFixed(0)} µs`);
    }
    const queue = median(queueRates);
    const baseline = median(baselineRates);
    console.log(`| figure | median of ${runs} |`);
    console.log('|---|---|');
    console.log(`| queue, 3 producers → 3 competing consumers, 1 KiB (msgs/s) | ${Math.round(queue)} |`);
    console.log(`| baseline: raw AGREED 1 KiB, 3 senders → 3 receivers (msgs/s) | ${Math.round(baseline)} |`);
    const ratios = queueRates.map((rate, run) => rate / baselineRates[run]!);
    console.log(`| queue / baseline (median of the runs' ratios) | ${median(ratios).toFixed(2)} |`);
    console.log(`| ask round trip on one daemon, p50 / p99 (µs) | ${median(askP50).toFixed(0)} / ${median(askP99).toFixed(0)} |`);
    console.log(`| queue state alone, per message at each member (ns) | ${median(stateNs).toFixed(0)} |`);
  } finally {
    await ring.stop();
  }
}

const roles: Record<string, () => Promise<void>> = {
  main,
  consumer: consumerRole,
  producer: producerRole,
  receiver: receiverRole,
  sender: senderRole,
  replier: replierRole,
};
if (role !== 'main') process.once('SIGTERM', () => process.exit(0));
await roles[role]!();
