/**
 * `tspread flooder`: Spread's throughput tester spflooder (spread-protocol.md
 * §10.3) with the same options and flow control, plus `--service`, delivery
 * latency percentiles and `--json` output for benchmarks.
 *
 * Every message starts with a 16-byte stamp when it is at least that long:
 * send time (CLOCK_MONOTONIC ns, shared by processes on one host), sequence
 * number and the sender's total. Receivers use it for latency and to see when
 * each sender has finished; shorter messages, and messages whose first bytes are
 * no stamp (another tool's, e.g. Spread's own spflooder), are only counted. A
 * receiver ends when every stamped sender has finished or, as spflooder does,
 * when it has counted `-m` messages per sender. A receiver's report carries a
 * digest of the order it saw (sender and first bytes of every message), so that
 * receivers on different daemons can be compared.
 *
 * Differences from spflooder: `-ro`/`-wo` are also accepted as `--ro`/`--wo`;
 * `-n` is ignored with `-wo` (a non-member cannot watch the membership);
 * `--senders` tells a receiver how many senders to wait for (default: the `-n`
 * count, else 1).
 */
import { Command, InvalidArgumentError, type ParseOptionsResult } from 'commander';
import { integer } from './options.js';
import { connect, type DataMessage, type MembershipMessage, type Service, type Session } from '../client/index.js';

const GROUP = 'flooder';
/** spflooder's flow control: stay within this many messages of one's own deliveries. */
const OWN_WINDOW_MESSAGES = 200;
const PROGRESS_EVERY_MESSAGES = 1000;
const MESSAGE_BYTES_MAX = 100_000;
const MEMBERS_MAX = 100;
const STAMP_BYTES = 16;
const LATENCY_SAMPLES_MAX = 10_000_000;
const SERVICES: readonly Service[] = ['unreliable', 'reliable', 'fifo', 'causal', 'agreed', 'safe'];

/** Options of runFlooder(). */
export interface FlooderOptions {
  user: string;
  server: string;
  messages: number;
  bytes: number;
  members?: number;
  readOnly: boolean;
  writeOnly: boolean;
  service?: Service;
  senders?: number;
  socketDir?: string;
  /** Called with a progress line every 1000 messages. */
  progress?: (line: string) => void;
}

/** What a run measured. */
export interface FlooderReport {
  privateGroup: string;
  service: Service;
  bytes: number;
  sent: number;
  received: number;
  ownReceived: number;
  seconds: number;
  msgsPerSec: number;
  mbitPerSec: number;
  latencyMs: { p50: number; p99: number; max: number; samples: number } | null;
  /** FNV-1a over every delivery's sender and first 16 bytes, in delivery order (hex); null for a pure writer. */
  orderDigest: string | null;
}

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/** Folds one delivery into an order digest (32-bit FNV-1a over the sender's name and the stamp). */
function digestDelivery(digest: number, sender: string, data: Uint8Array): number {
  let hash = digest;
  for (let i = 0; i < sender.length; i++) hash = Math.imul(hash ^ sender.charCodeAt(i), FNV_PRIME);
  const stampEnd = Math.min(data.length, STAMP_BYTES);
  for (let i = 0; i < stampEnd; i++) hash = Math.imul(hash ^ data[i], FNV_PRIME);
  return hash >>> 0;
}

/** Little-endian uint32 without allocating a view (runs once per received message). */
function uint32At(bytes: Uint8Array, offset: number): number {
  return (bytes[offset] | (bytes[offset + 1] << 8) | (bytes[offset + 2] << 16) | (bytes[offset + 3] << 24)) >>> 0;
}

/** Stamps further than this from the receiver's clock are another tool's bytes, not a send time. */
const STAMP_CLOCK_SKEW_NS = 600e9;

/** The message's stamp (send time, sequence, total), or null when its first bytes are not one. */
function stampOf(data: Uint8Array, nowNs: number): { sentNs: number; last: boolean } | null {
  if (data.length < STAMP_BYTES) return null;
  const sentNs = uint32At(data, 4) * 0x1_0000_0000 + uint32At(data, 0);
  const sequence = uint32At(data, 8);
  const total = uint32At(data, 12);
  if (total === 0 || sequence >= total || Math.abs(nowNs - sentNs) > STAMP_CLOCK_SKEW_NS) return null;
  return { sentNs, last: sequence === total - 1 };
}

function percentile(sorted: Float64Array, fraction: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(fraction * sorted.length) - 1))];
}

/** Runs one flooder; resolves with its measurements. */
export async function runFlooder(options: FlooderOptions): Promise<FlooderReport> {
  const reading = !options.writeOnly;
  const writing = !options.readOnly;
  const service = options.service ?? (options.members !== undefined ? 'fifo' : 'reliable');
  const expectedSenders = options.senders ?? options.members ?? 1;
  const stamped = options.bytes >= STAMP_BYTES;
  const session = await connect({
    daemon: options.server,
    privateName: options.user,
    membership: reading,
    unixSocketDir: options.socketDir,
  });
  const { privateGroup } = session;

  let received = 0;
  let ownReceived = 0;
  let sent = 0;
  let orderDigest = FNV_OFFSET;
  let firstReceiveNs = 0n;
  let lastReceiveNs = 0n;
  const latencies = new Float64Array(reading ? Math.min(LATENCY_SAMPLES_MAX, options.messages * expectedSenders) : 0);
  let latencyCount = 0;
  const finishedSenders = new Set<string>();
  let wakeWriter = (): void => undefined;
  let readerDone = !reading;
  let resolveReader = (): void => undefined;
  const readerFinished = new Promise<void>((resolve) => (resolveReader = resolve));

  const onMessage = (message: DataMessage) => {
    const now = process.hrtime.bigint();
    if (received === 0) firstReceiveNs = now;
    lastReceiveNs = now;
    received++;
    if (message.sender === privateGroup) {
      ownReceived++;
      wakeWriter();
    }
    orderDigest = digestDelivery(orderDigest, message.sender, message.data);
    const stamp = stampOf(message.data, Number(now));
    if (stamp !== null) {
      if (latencyCount < latencies.length) latencies[latencyCount++] = (Number(now) - stamp.sentNs) / 1e6;
      if (stamp.last) finishedSenders.add(message.sender);
    }
    if (received % PROGRESS_EVERY_MESSAGES === 0) options.progress?.(`received ${received} messages`);
    const done = finishedSenders.size >= expectedSenders || received >= options.messages * expectedSenders;
    if (done && !readerDone) {
      readerDone = true;
      resolveReader();
    }
  };
  if (reading) session.on('message', onMessage);

  if (reading) {
    const joined = options.members === undefined ? Promise.resolve() : membersReached(session, options.members);
    session.join(GROUP);
    await joined;
  }

  let startNs = process.hrtime.bigint();
  let writeEndNs = startNs;
  if (writing) {
    const payload = Buffer.alloc(options.bytes);
    if (stamped) payload.writeUInt32LE(options.messages, 12);
    const flowControl = reading;
    startNs = process.hrtime.bigint();
    while (sent < options.messages) {
      if (flowControl && sent - ownReceived >= OWN_WINDOW_MESSAGES) {
        await new Promise<void>((resolve) => (wakeWriter = resolve));
        wakeWriter = () => undefined;
        continue;
      }
      if (stamped) {
        payload.writeBigUInt64LE(process.hrtime.bigint(), 0);
        payload.writeUInt32LE(sent, 8);
      }
      const roomLeft = session.multicast(GROUP, payload, { service });
      sent++;
      if (sent % PROGRESS_EVERY_MESSAGES === 0) options.progress?.(`sent ${sent} messages`);
      if (!roomLeft) await session.drained();
    }
    await session.drained();
    writeEndNs = process.hrtime.bigint();
  }

  const failure = session.closed();
  if (reading) {
    const closedEarly = await Promise.race([readerFinished.then(() => false), failure.then(() => true)]);
    if (closedEarly) throw (await failure) ?? new Error('session closed before all messages arrived');
  }
  await session.disconnect();

  // A reader's interval runs to its last delivery; a pure writer's to the last byte handed to the kernel.
  const fromNs = writing ? startNs : firstReceiveNs;
  const toNs = reading ? lastReceiveNs : writeEndNs;
  const seconds = Math.max(Number(toNs - fromNs) / 1e9, 1e-9);
  const counted = reading ? received : sent;
  const sorted = latencies.subarray(0, latencyCount).sort();
  return {
    privateGroup,
    service,
    bytes: options.bytes,
    sent,
    received,
    ownReceived,
    seconds,
    msgsPerSec: counted / seconds,
    mbitPerSec: (counted * options.bytes * 8) / seconds / 1e6,
    latencyMs:
      latencyCount === 0
        ? null
        : { p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99), max: sorted[latencyCount - 1], samples: latencyCount },
    orderDigest: reading ? orderDigest.toString(16).padStart(8, '0') : null,
  };
}

/** Resolves once the flooder group has at least `count` members. */
function membersReached(session: Session, count: number): Promise<void> {
  return new Promise((resolve) => {
    const onMembership = (message: MembershipMessage) => {
      if (message.group === GROUP && message.members.length >= count) {
        session.off('membership', onMembership);
        resolve();
      }
    };
    session.on('membership', onMembership);
  });
}

/** Formats a report the way the command prints it. */
export function formatReport(report: FlooderReport): string {
  const lines = [
    `flooder: ${report.privateGroup} sent ${report.sent}, received ${report.received} (${report.ownReceived} own) ` +
      `${report.service.toUpperCase()} messages of ${report.bytes} bytes in ${report.seconds.toFixed(3)} s`,
    `flooder: ${Math.round(report.msgsPerSec)} msgs/s, ${report.mbitPerSec.toFixed(1)} Mbit/s`,
  ];
  const latency = report.latencyMs;
  lines.push(
    latency === null
      ? 'flooder: latency n/a (nothing received, or messages without the 16-byte stamp of a tspread flooder)'
      : `flooder: latency p50 ${latency.p50.toFixed(3)} ms, p99 ${latency.p99.toFixed(3)} ms, max ${latency.max.toFixed(3)} ms (${latency.samples} samples)`,
  );
  return lines.join('\n');
}

/** Accepts spflooder's single-dash long options `-ro` and `-wo`. */
class FlooderCommand extends Command {
  override parseOptions(args: string[]): ParseOptionsResult {
    return super.parseOptions(args.map((arg) => (arg === '-ro' ? '--ro' : arg === '-wo' ? '--wo' : arg)));
  }
}

interface FlooderCommandOptions {
  u: string;
  s: string;
  m: number;
  b: number;
  n?: number;
  ro?: boolean;
  wo?: boolean;
  service?: Service;
  senders?: number;
  socketDir: string;
  json?: boolean;
}

/** The `tspread flooder` command. */
export function flooderCommand(): Command {
  return new FlooderCommand('flooder')
    .description('Spread throughput tester (spflooder): floods the group "flooder" and reports msgs/s, Mbit/s and latency')
    .option('-u <name>', 'private name', 'flooder')
    .option('-s <daemon>', 'daemon: <port> (Unix socket) or <port>@<host>', '4803')
    .option('-m <count>', 'number of messages', integer(1, 1_000_000_000), 10_000)
    .option('-b <bytes>', `message size (max ${MESSAGE_BYTES_MAX})`, integer(0, MESSAGE_BYTES_MAX), 1000)
    .option('-n <members>', `wait for this many members of "flooder", then send FIFO (max ${MEMBERS_MAX})`, integer(1, MEMBERS_MAX))
    .option('--ro', 'read only (also -ro): join and receive')
    .option('--wo', 'write only (also -wo): send without joining')
    .option('--service <name>', `service: ${SERVICES.join(', ')} (default reliable, fifo with -n)`, (value: string) => {
      if (!SERVICES.includes(value.toLowerCase() as Service)) throw new InvalidArgumentError(`one of ${SERVICES.join(', ')}`);
      return value.toLowerCase() as Service;
    })
    .option('--senders <count>', 'senders a receiver waits for (default: -n, else 1)', integer(1, MEMBERS_MAX))
    .option('--socket-dir <dir>', 'directory of the daemon Unix socket', '/tmp')
    .option('--json', 'print one JSON object instead of text')
    .action(async (opts: FlooderCommandOptions) => {
      if (opts.ro && opts.wo) {
        console.error('flooder: -ro and -wo exclude each other');
        process.exitCode = 2;
        return;
      }
      try {
        const report = await runFlooder({
          user: opts.u,
          server: opts.s,
          messages: opts.m,
          bytes: opts.b,
          members: opts.wo ? undefined : opts.n,
          readOnly: opts.ro === true,
          writeOnly: opts.wo === true,
          service: opts.service,
          senders: opts.senders,
          socketDir: opts.socketDir,
          progress: opts.json ? undefined : (line) => console.log(`flooder: ${line}`),
        });
        console.log(opts.json ? JSON.stringify(report) : formatReport(report));
      } catch (error) {
        console.error(`flooder: ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`);
        process.exitCode = 1;
      }
    });
}
