/**
 * `tspread check`: a liveness check following the Nagios/Icinga plugin conventions
 * (one status line, `|` performance data, exit 0 OK / 1 WARNING / 2 CRITICAL / 3 UNKNOWN).
 *
 * It connects to a daemon, joins a unique probe group, multicasts one message to it and
 * times the message's delivery back to itself. Self-delivery goes through the whole ring
 * (the message is ordered by the token), so the latency measures the ring, not just the
 * local daemon. With `--status URL` it also reads the daemon's /status and adds the same
 * counters the monitor, Prometheus and the dashboard show to the performance data.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Command, InvalidArgumentError, Option } from 'commander';
import type { DataMessage, MembershipMessage, Service } from '../client/messages.js';
import type { DaemonStatusSnapshot } from '../daemon/status-types.js';

export const CheckStatus = { OK: 0, WARNING: 1, CRITICAL: 2, UNKNOWN: 3 } as const;
export type CheckStatusCode = (typeof CheckStatus)[keyof typeof CheckStatus];
const STATUS_NAMES = ['OK', 'WARNING', 'CRITICAL', 'UNKNOWN'] as const;

export const CHECK_DEFAULTS = { daemon: '4803', warningMs: 100, criticalMs: 500, timeoutSeconds: 10 } as const;

/** The part of a client Session the check uses (a real Session fits; tests pass fakes). */
export interface ProbeSession {
  readonly privateGroup: string;
  join(group: string): void;
  leave(group: string): void;
  multicast(groups: string, data: Uint8Array, options?: { service?: Service }): boolean;
  disconnect(): Promise<void>;
  on(event: 'message', listener: (message: DataMessage) => void): unknown;
  on(event: 'membership', listener: (message: MembershipMessage) => void): unknown;
  on(event: 'close', listener: (error: Error | undefined) => void): unknown;
}

export interface CheckOptions {
  /** Spread name: "4803", "4803@host". */
  daemon: string;
  warningMs: number;
  criticalMs: number;
  timeoutSeconds: number;
  service?: Service;
  /** Directory of the daemon's Unix socket for a port-only name (default /tmp). */
  unixSocketDir?: string;
  /** Optional /status URL of the same daemon, for counters in the performance data. */
  statusUrl?: string;
  /** Client library connect; injectable for tests. */
  connect?: (options: ProbeConnectOptions) => Promise<ProbeSession>;
  fetchStatus?: (url: string) => Promise<DaemonStatusSnapshot>;
}

export interface CheckResult {
  status: CheckStatusCode;
  /** The plugin output line: `SPREAD <STATUS> - text | perfdata`. */
  line: string;
  connectMs?: number;
  joinMs?: number;
  latencyMs?: number;
}

const round = (ms: number) => Math.round(ms * 100) / 100;

class CheckFailure extends Error {}

export interface ProbeConnectOptions {
  daemon: string;
  privateName: string;
  timeoutMs: number;
  unixSocketDir?: string;
}

async function defaultConnect(options: ProbeConnectOptions): Promise<ProbeSession> {
  const { connect } = await import('../client/index.js');
  return connect({ ...options, membership: true });
}

async function defaultFetchStatus(url: string): Promise<DaemonStatusSnapshot> {
  const response = await fetch(url, { signal: AbortSignal.timeout(5000) });
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  return (await response.json()) as DaemonStatusSnapshot;
}

/** Waits for the first event of `session` that `pick` accepts, or for the deadline. */
function waitFor<T>(
  session: ProbeSession,
  deadlineMs: number,
  what: string,
  pick: (event: { message?: DataMessage; membership?: MembershipMessage }) => T | undefined,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const finish = (action: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      action();
    };
    const timer = setTimeout(
      () => finish(() => reject(new CheckFailure(`no ${what} within the timeout`))),
      Math.max(0, deadlineMs - performance.now()),
    );
    session.on('message', (message) => {
      const value = pick({ message });
      if (value !== undefined) finish(() => resolve(value));
    });
    session.on('membership', (membership) => {
      const value = pick({ membership });
      if (value !== undefined) finish(() => resolve(value));
    });
    session.on('close', (error) => finish(() => reject(new CheckFailure(`session closed before ${what}${error ? `: ${error.message}` : ''}`))));
  });
}

function perfValue(label: string, value: number, unit: string, warn = '', crit = '', min = ''): string {
  const fields = [`${value}${unit}`, warn, crit, min].join(';').replace(/;+$/, '');
  return `${label}=${fields}`;
}

function snapshotPerfData(snapshot: DaemonStatusSnapshot): string[] {
  return [
    perfValue('ring_members', snapshot.ring.members.length, '', '', '', '0'),
    perfValue('sessions', snapshot.sessions, '', '', '', '0'),
    perfValue('groups', snapshot.groups.length, '', '', '', '0'),
    perfValue('messages_delivered', snapshot.traffic.messagesDelivered, 'c'),
    perfValue('bytes_delivered', snapshot.traffic.bytesDelivered, 'c'),
    perfValue('retransmissions', snapshot.ring.retransmissions, 'c'),
    perfValue('token_rounds_per_second', snapshot.tokenRoundsPerSecond, '', '', '', '0'),
  ];
}

/** Runs the check once; never throws (failures become CRITICAL or UNKNOWN results). */
export async function runCheck(options: CheckOptions): Promise<CheckResult> {
  const { warningMs, criticalMs } = options;
  if (!(warningMs >= 0 && criticalMs >= 0 && options.timeoutSeconds > 0)) {
    return { status: CheckStatus.UNKNOWN, line: 'SPREAD UNKNOWN - thresholds must be >= 0 and the timeout > 0' };
  }
  if (warningMs > criticalMs) {
    return { status: CheckStatus.UNKNOWN, line: `SPREAD UNKNOWN - warning ${warningMs} ms is above critical ${criticalMs} ms` };
  }
  const connect = options.connect ?? defaultConnect;
  const started = performance.now();
  const deadline = started + options.timeoutSeconds * 1000;
  const token = randomBytes(6).toString('hex');
  const group = `tspread-check-${token}`;
  let session: ProbeSession | undefined;
  let connectMs: number | undefined;
  let joinMs: number | undefined;
  let stage = 'connect';
  try {
    session = await connect({
      daemon: options.daemon,
      privateName: `k${token.slice(0, 9)}`,
      timeoutMs: options.timeoutSeconds * 1000,
      unixSocketDir: options.unixSocketDir,
    });
    connectMs = performance.now() - started;
    const probe = session;
    stage = 'join';
    const joinStarted = performance.now();
    const joined = waitFor(probe, deadline, 'join of the probe group', ({ membership }) =>
      membership && membership.group === group && !membership.transitional && membership.members.includes(probe.privateGroup) ? true : undefined,
    );
    probe.join(group);
    await joined;
    joinMs = performance.now() - joinStarted;
    stage = 'self-delivery';
    const payload = Buffer.from(`tspread-check ${token} ${Date.now()}`);
    const delivered = waitFor(probe, deadline, 'self-delivery', ({ message }) =>
      message && message.sender === probe.privateGroup && Buffer.from(message.data).equals(payload) ? performance.now() : undefined,
    );
    const sentAt = performance.now();
    probe.multicast(group, payload, { service: options.service ?? 'agreed' });
    const latencyMs = (await delivered) - sentAt;
    probe.leave(group);

    let extra: string[] = [];
    let ringText = '';
    if (options.statusUrl) {
      try {
        const snapshot = await (options.fetchStatus ?? defaultFetchStatus)(options.statusUrl);
        extra = snapshotPerfData(snapshot);
        ringText = `, ring of ${snapshot.ring.members.length} (${snapshot.ring.state.toUpperCase()})`;
      } catch (error) {
        ringText = `, status unavailable: ${(error as Error).message}`;
      }
    }
    const status = latencyMs > criticalMs ? CheckStatus.CRITICAL : latencyMs > warningMs ? CheckStatus.WARNING : CheckStatus.OK;
    const perf = [
      perfValue('latency', round(latencyMs), 'ms', String(warningMs), String(criticalMs), '0'),
      perfValue('connect', round(connectMs), 'ms', '', '', '0'),
      perfValue('join', round(joinMs), 'ms', '', '', '0'),
      ...extra,
    ];
    return {
      status,
      line: `SPREAD ${STATUS_NAMES[status]} - self-delivery ${round(latencyMs)} ms at ${options.daemon}${ringText} | ${perf.join(' ')}`,
      connectMs,
      joinMs,
      latencyMs,
    };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const perf = connectMs === undefined ? '' : ` | ${perfValue('connect', round(connectMs), 'ms', '', '', '0')}`;
    return {
      status: CheckStatus.CRITICAL,
      line: `SPREAD CRITICAL - ${stage} failed at ${options.daemon}: ${message}${perf}`,
      connectMs,
      joinMs,
    };
  } finally {
    await session?.disconnect().catch(() => undefined);
  }
}

function parseMs(label: string) {
  return (value: string): number => {
    const number = Number(value.replace(/ms$/, ''));
    if (!Number.isFinite(number) || number < 0) throw new InvalidArgumentError(`${label} must be a non-negative number, not '${value}'`);
    return number;
  };
}

export function checkCommand(): Command {
  const command = new Command('check')
    .description('Nagios/Icinga liveness check: connect, join a probe group, time self-delivery')
    .option('-s, --daemon <spread-name>', 'daemon to check ("4803" or "4803@host")', CHECK_DEFAULTS.daemon)
    .option('-w, --warning <ms>', 'warning threshold for self-delivery latency', parseMs('warning'), CHECK_DEFAULTS.warningMs)
    .option('-c, --critical <ms>', 'critical threshold for self-delivery latency', parseMs('critical'), CHECK_DEFAULTS.criticalMs)
    .option('-t, --timeout <seconds>', 'give up (CRITICAL) after this long', parseMs('timeout'), CHECK_DEFAULTS.timeoutSeconds)
    .addOption(new Option('--service <service>', 'service of the probe message').choices(['reliable', 'fifo', 'causal', 'agreed', 'safe']).default('agreed'))
    .option('--unix-dir <dir>', 'directory of the daemon\'s Unix socket when -s is a bare port', '/tmp')
    .option('--status <url>', "the daemon's /status URL: add its counters to the performance data")
    .exitOverride((error) => {
      const ok = error.code === 'commander.helpDisplayed' || error.code === 'commander.help' || error.code === 'commander.version';
      process.exit(ok ? 0 : CheckStatus.UNKNOWN);
    })
    .configureOutput({ writeErr: (text) => process.stdout.write(`SPREAD UNKNOWN - ${text.replace(/^error: /, '')}`) })
    .action(async (flags: { daemon: string; warning: number; critical: number; timeout: number; service: Service; status?: string; unixDir: string }) => {
      const result = await runCheck({
        daemon: flags.daemon,
        warningMs: flags.warning,
        criticalMs: flags.critical,
        timeoutSeconds: flags.timeout,
        service: flags.service,
        statusUrl: flags.status,
        unixSocketDir: flags.unixDir,
      });
      process.stdout.write(`${result.line}\n`);
      process.exitCode = result.status;
    });
  return command;
}
