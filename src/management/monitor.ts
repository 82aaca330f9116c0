/**
 * `tspread monitor`: spmonitor's job (spread-protocol.md §10.4). Polls every selected daemon
 * of a configuration for status over Spread's monitor protocol (§9) every -t seconds and
 * prints it spmonitor-style, with the flow-control parameters; sends partition,
 * flow-control, terminate and reload packets. Works against tspread and Spread daemons.
 * `--http URL...` reads tspread daemons' /status instead (adds ring members and groups).
 *
 * Non-interactive use: `--once`, `--json`, and one flag per menu action. Without flags on a
 * terminal it shows spmonitor's menu (0 select, 1–4 partition, 5–7 flow control,
 * 8 terminate, r reload, 9/q quit).
 */
import readline from 'node:readline';
import { Command, InvalidArgumentError } from 'commander';
import type { DaemonSpec, SpreadConfig } from '../config/types.js';
import type { DaemonStatusSnapshot } from '../daemon/status-types.js';
import {
  DEFAULT_MONITOR_PORT,
  PARTITION_RESEND_MS,
  encodeFlowControlRequest,
  encodePartitionRequest,
  encodeReloadRequest,
  groupStateName,
  ringStateName,
  statusReplyFromSnapshot,
  type FlowControlSettings,
  type MonitorStatus,
} from './monitor-protocol.js';
import { COMMAND_COPIES, MonitorClient } from './monitor-client.js';
import { fetchDaemonView } from './dashboard.js';
import { ringIdText } from './metrics.js';

/** One daemon's row of a status round. */
export interface MonitorRow {
  name: string;
  vid: number | null;
  ok: boolean;
  error?: string;
  status?: MonitorStatus;
  /** HTTP mode only: the full snapshot (ring members, groups). */
  snapshot?: DaemonStatusSnapshot;
  receivedAtMs: number;
}

const pad = (value: number | string, width = 7) => String(value).padStart(width);

/** spmonitor's status block, plus the ring and groups when a snapshot is known. */
export function formatStatus(row: MonitorRow, leaderName: string, previous?: MonitorRow): string {
  if (!row.ok || !row.status) return `============================\n${row.name}: no status (${row.error ?? 'no reply'})\n`;
  const s = row.status;
  const p = previous?.ok ? previous.status : undefined;
  const delta = (now: number, before: number | undefined) => (before === undefined ? 0 : now - before);
  const lines = [
    '============================',
    `Status at ${row.name} V${pad(s.majorVersion, 2)}.${String(s.minorVersion).padStart(2, '0')}.${pad(s.patchVersion, 2)} ` +
      `(state ${s.state} ${ringStateName(s.state)}, gstate ${s.gstate} ${groupStateName(s.gstate)}) after ${s.sec} seconds :`,
    `Membership  :  ${s.numProcs}  procs in ${s.numSegments} segments, leader is ${leaderName}`,
    `rounds   : ${pad(s.tokenRounds)}\ttok_hurry : ${pad(s.tokenHurry)}\tmemb change: ${pad(s.membershipChanges)}`,
    `sent pack: ${pad(s.packetSent)}\trecv pack : ${pad(s.packetRecv)}\tretrans    : ${pad(s.retrans)}`,
    `u retrans: ${pad(s.uRetrans)}\ts retrans : ${pad(s.sRetrans)}\tb retrans  : ${pad(s.bRetrans)}`,
    `My_aru   : ${pad(s.myAru)}\tAru       : ${pad(s.aru)}\tHighest seq: ${pad(s.highestSeq)}`,
    `Sessions : ${pad(s.numSessions)}\tGroups    : ${pad(s.numGroups)}\tWindow     : ${pad(s.window)}`,
    `Deliver M: ${pad(s.messageDelivered)}\tDeliver Pk: ${pad(s.packetDelivered)}\tP/A Window : ${pad(s.personalWindow)}/${s.acceleratedWindow}`,
    `Delta Mes: ${pad(delta(s.messageDelivered, p?.messageDelivered))}\tDelta Pk  : ${pad(delta(s.packetDelivered, p?.packetDelivered))}\tDelta sec  : ${pad(delta(s.sec, p?.sec))}`,
    `Accelerated ring: ${s.acceleratedRing ? 'yes' : 'no'}`,
  ];
  const snap = row.snapshot;
  if (snap) {
    const names = snap.ring.members.map((vid) => snap.config.daemons.find((d) => d.vid >>> 0 === vid >>> 0)?.name ?? String(vid >>> 0));
    lines.push(`Ring       : ${ringIdText(snap)}  members ${names.join(' ')}  rounds/s ${snap.tokenRoundsPerSecond.toFixed(1)}`);
    lines.push(`Traffic    : received ${snap.traffic.messagesReceived} msgs / ${snap.traffic.bytesReceived} B, delivered ${snap.traffic.messagesDelivered} msgs / ${snap.traffic.bytesDelivered} B`);
    lines.push(`Config     : ${snap.config.source} hash ${snap.config.hash >>> 0}`);
    for (const group of snap.groups) {
      lines.push(`  group ${group.name.padEnd(31)} members ${pad(group.members, 4)} (local ${group.localMembers})  messages ${pad(group.messages)}  bytes ${group.bytes}`);
    }
  }
  lines.push('==================================');
  return `${lines.join('\n')}\n`;
}

/** Name of the daemon with `vid` among configured daemons or the rows themselves. */
function leaderNameOf(row: MonitorRow, config: SpreadConfig | null, rows: readonly MonitorRow[]): string {
  const vid = row.status?.leaderId;
  if (vid === undefined) return '?';
  return (
    config?.daemons.find((d) => d.vid >>> 0 === vid >>> 0)?.name ??
    row.snapshot?.config.daemons.find((d) => d.vid >>> 0 === vid >>> 0)?.name ??
    rows.find((other) => other.vid !== null && other.vid >>> 0 === vid >>> 0)?.name ??
    String(vid >>> 0)
  );
}

export function formatRound(rows: readonly MonitorRow[], config: SpreadConfig | null, previous: ReadonlyMap<string, MonitorRow>): string {
  const header = `tspread monitor ${new Date().toISOString()}${config ? `  ${config.source} hash ${config.hash >>> 0}` : ''}\n`;
  return header + rows.map((row) => formatStatus(row, leaderNameOf(row, config, rows), previous.get(row.name))).join('');
}

/** Partition spec: "1,1,2" (configuration order) or "d1=1,d2=2" (others 0). */
export function parsePartitionSpec(text: string, config: SpreadConfig): number[] {
  const components = config.daemons.map(() => 0);
  const entries = text.split(',').map((entry) => entry.trim()).filter(Boolean);
  entries.forEach((entry, position) => {
    const [name, value] = entry.includes('=') ? entry.split('=') : [config.daemons[position]?.name, entry];
    const index = config.daemons.findIndex((daemon) => daemon.name === name);
    const component = Number(value);
    if (index < 0) throw new InvalidArgumentError(`no daemon '${name ?? `#${position + 1}`}' in ${config.source}`);
    if (!Number.isInteger(component) || component < -1 || component > 0x7fff) throw new InvalidArgumentError(`bad component '${value}'`);
    components[index] = component;
  });
  return components;
}

/** Flow-control spec: "window=200,d1=30,d2=30/10" (personal[/accelerated]); anything not named stays unchanged. */
export function parseFlowControlSpec(text: string, config: SpreadConfig): FlowControlSettings {
  const settings: FlowControlSettings = {
    window: null,
    personalWindows: config.daemons.map(() => null),
    acceleratedWindows: config.daemons.map(() => null),
  };
  const number = (value: string | undefined) => {
    if (value === undefined || value === '') return null;
    const parsed = Number(value);
    if (!Number.isInteger(parsed) || parsed < -1 || parsed > 0x7fff) throw new InvalidArgumentError(`bad window '${value}'`);
    return parsed === -1 ? null : parsed;
  };
  for (const entry of text.split(',').map((item) => item.trim()).filter(Boolean)) {
    const [key, value = ''] = entry.split('=');
    if (key.toLowerCase() === 'window') {
      settings.window = number(value);
      continue;
    }
    const index = config.daemons.findIndex((daemon) => daemon.name === key);
    if (index < 0) throw new InvalidArgumentError(`no daemon '${key}' in ${config.source}`);
    const [personal, accelerated] = value.split('/');
    settings.personalWindows[index] = number(personal);
    settings.acceleratedWindows[index] = number(accelerated);
  }
  return settings;
}

export function selectDaemons(config: SpreadConfig, names: readonly string[] | undefined): DaemonSpec[] {
  if (!names || names.length === 0 || names.includes('all')) return [...config.daemons];
  if (names.includes('none')) return [];
  return names.map((name) => {
    const daemon = config.daemons.find((entry) => entry.name === name);
    if (!daemon) throw new InvalidArgumentError(`no daemon '${name}' in ${config.source}`);
    return daemon;
  });
}

/** A monitor over the UDP protocol: the state behind spmonitor's menu. */
export class UdpMonitor {
  selected: DaemonSpec[];
  partition: number[];
  partitionActive = false;
  flowControl: FlowControlSettings;
  #partitionTimer: NodeJS.Timeout | null = null;
  #previous = new Map<string, MonitorRow>();

  constructor(
    public config: SpreadConfig,
    readonly client: MonitorClient,
    private readonly reloadConfig: () => Promise<SpreadConfig>,
  ) {
    this.selected = [...config.daemons];
    this.partition = config.daemons.map(() => 0);
    this.flowControl = parseFlowControlSpec('', config);
  }

  static async open(options: { configPath?: string; name?: string; port: number }): Promise<UdpMonitor> {
    const { loadConfig, chooseIdentity, localAddresses } = await import('../config/index.js');
    const load = async () => loadConfig(options.configPath);
    const config = await load();
    const self = chooseIdentity(config, options.name, localAddresses(config));
    const client = await MonitorClient.open(config, self, options.port);
    return new UdpMonitor(config, client, load);
  }

  async poll(waitMs: number): Promise<{ rows: MonitorRow[]; previous: Map<string, MonitorRow> }> {
    const replies = await this.client.statusRound(this.selected, waitMs);
    const rows = this.selected.map((daemon): MonitorRow => {
      const reply = replies.get(daemon.name);
      return reply
        ? { name: daemon.name, vid: daemon.vid, ok: true, status: reply.status, receivedAtMs: reply.receivedAtMs }
        : { name: daemon.name, vid: daemon.vid, ok: false, error: `no reply within ${waitMs} ms`, receivedAtMs: Date.now() };
    });
    const previous = this.#previous;
    this.#previous = new Map(rows.filter((row) => row.ok).map((row) => [row.name, row]));
    for (const [name, row] of previous) if (!this.#previous.has(name)) this.#previous.set(name, row);
    return { rows, previous };
  }

  /** Sends the current partition to every daemon (twice) and keeps re-sending it every 25 s (unless `once`). */
  async sendPartition(once = false): Promise<void> {
    const send = () => this.client.send(encodePartitionRequest(this.client.identity, this.partition), this.config.daemons, COMMAND_COPIES);
    await send();
    this.partitionActive = this.partition.some((component) => component !== 0);
    this.#stopPartitionTimer();
    if (this.partitionActive && !once) {
      this.#partitionTimer = setInterval(() => void send(), PARTITION_RESEND_MS);
      this.#partitionTimer.unref();
    }
  }

  async cancelPartition(): Promise<void> {
    this.partition = this.config.daemons.map(() => 0);
    await this.sendPartition(true);
  }

  #stopPartitionTimer(): void {
    if (this.#partitionTimer) clearInterval(this.#partitionTimer);
    this.#partitionTimer = null;
  }

  async sendFlowControl(): Promise<void> {
    const packet = encodeFlowControlRequest(this.client.identity, this.config.daemons.length, this.flowControl);
    await this.client.send(packet, this.config.daemons, COMMAND_COPIES);
  }

  /** spmonitor's terminate: the current partition with −1 for the targets, sent only to them. */
  async terminate(targets: readonly DaemonSpec[]): Promise<void> {
    const components = this.config.daemons.map((daemon, index) => (targets.includes(daemon) ? -1 : this.partition[index]));
    await this.client.send(encodePartitionRequest(this.client.identity, components), targets, COMMAND_COPIES);
  }

  /** Sends RELOAD to every daemon, then reloads the monitor's own configuration and resets its state. */
  async reload(): Promise<void> {
    await this.client.send(encodeReloadRequest(this.client.identity), this.config.daemons, COMMAND_COPIES);
    this.config = await this.reloadConfig();
    this.client.setConfig(this.config);
    this.selected = [...this.config.daemons];
    this.partition = this.config.daemons.map(() => 0);
    this.flowControl = parseFlowControlSpec('', this.config);
    this.#stopPartitionTimer();
    this.partitionActive = false;
  }

  async close(): Promise<void> {
    this.#stopPartitionTimer();
    await this.client.close();
  }
}

/** HTTP mode: one round of /status reads, shown with the same Spread fields. */
export async function pollHttp(urls: readonly string[]): Promise<MonitorRow[]> {
  const views = await Promise.all(urls.map((url) => fetchDaemonView(url)));
  return views.map((view): MonitorRow =>
    view.ok && view.snapshot
      ? {
          name: view.snapshot.daemon.name,
          vid: view.snapshot.daemon.vid,
          ok: true,
          status: statusReplyFromSnapshot(view.snapshot),
          snapshot: view.snapshot,
          receivedAtMs: view.fetchedAtMs,
        }
      : { name: view.source, vid: null, ok: false, error: view.error, receivedAtMs: view.fetchedAtMs },
  );
}

function flowControlText(monitor: UdpMonitor): string {
  const fc = monitor.flowControl;
  const show = (value: number | null) => (value === null ? 'unchanged' : String(value));
  const lines = [`Window: ${show(fc.window)}  (configured ${monitor.config.params.window})`];
  monitor.config.daemons.forEach((daemon, index) => {
    lines.push(`  ${daemon.name.padEnd(20)} personal ${show(fc.personalWindows[index])}  accelerated ${show(fc.acceleratedWindows[index])}`);
  });
  return lines.join('\n');
}

function partitionText(monitor: UdpMonitor): string {
  const rows = monitor.config.daemons.map((daemon, index) => `  ${daemon.name.padEnd(20)} ${monitor.partition[index]}`);
  return `${monitor.partitionActive ? 'Partition (active):' : 'Partition (not sent):'}\n${rows.join('\n')}`;
}

/** spmonitor's menu on a terminal. */
async function runMenu(monitor: UdpMonitor, write: (text: string) => void): Promise<void> {
  // Lines through the async iterator: it buffers, so piped input (several lines per chunk) works too.
  const rl = readline.createInterface({ input: process.stdin, terminal: process.stdin.isTTY === true });
  const lines = rl[Symbol.asyncIterator]();
  const ask = async (question: string): Promise<string> => {
    write(question);
    const next = await lines.next();
    if (next.done) throw new MenuClosed();
    return String(next.value).trim();
  };
  const askNames = async (prompt: string): Promise<DaemonSpec[] | null> => {
    const names: string[] = [];
    for (;;) {
      const answer = await ask(`${prompt} (name, all, none; empty line ends): `);
      if (answer === '') break;
      names.push(answer);
    }
    try {
      return selectDaemons(monitor.config, names.length === 0 ? ['none'] : names);
    } catch (error) {
      write(`${(error as Error).message}\n`);
      return null;
    }
  };
  const menu = [
    '', '==========', 'Monitor Menu:', '-------------',
    '\t0. Activate Status Query', '\t1. Define Partition', '\t2. Send Partition', '\t3. Review Partition',
    '\t4. Cancel Partition Effects', '\t5. Define Flow Control', '\t6. Send Flow Control', '\t7. Review Flow Control',
    '\t8. Terminate Daemons', '\tr. Reload Configuration', '', '\t9. Exit', '',
  ].join('\n');
  try {
    for (;;) {
      write(`${menu}\n`);
      const choice = await ask('Monitor> ');
      switch (choice) {
        case '0': {
          const selected = await askNames('Daemon to poll');
          if (selected) monitor.selected = selected;
          write(`Polling: ${monitor.selected.map((d) => d.name).join(' ') || 'none'}\n`);
          break;
        }
        case '1':
          for (const [index, daemon] of monitor.config.daemons.entries()) {
            const answer = await ask(`Component for ${daemon.name} [${monitor.partition[index]}]: `);
            if (answer !== '' && Number.isInteger(Number(answer))) monitor.partition[index] = Number(answer);
          }
          break;
        case '2':
          await monitor.sendPartition();
          write('Partition sent (re-sent every 25 s while active)\n');
          break;
        case '3':
          write(`${partitionText(monitor)}\n`);
          break;
        case '4':
          await monitor.cancelPartition();
          write('Partition cancelled\n');
          break;
        case '5': {
          const window = await ask('Window (empty: unchanged): ');
          const parts = [`window=${window}`];
          for (const daemon of monitor.config.daemons) {
            const personal = await ask(`Personal window for ${daemon.name} (empty: unchanged): `);
            const accelerated = monitor.config.params.acceleratedRing ? await ask(`Accelerated window for ${daemon.name} (empty: unchanged): `) : '';
            parts.push(`${daemon.name}=${personal}/${accelerated}`);
          }
          try {
            monitor.flowControl = parseFlowControlSpec(parts.join(','), monitor.config);
          } catch (error) {
            write(`${(error as Error).message}\n`);
          }
          break;
        }
        case '6':
          await monitor.sendFlowControl();
          write('Flow control sent\n');
          break;
        case '7':
          write(`${flowControlText(monitor)}\n`);
          break;
        case '8': {
          const targets = await askNames('Daemon to terminate');
          if (targets && targets.length > 0) {
            await monitor.terminate(targets);
            write(`Terminate sent to ${targets.map((d) => d.name).join(' ')}\n`);
          }
          break;
        }
        case 'r':
          await monitor.reload();
          write(`Reload sent; monitor configuration reloaded (hash ${monitor.config.hash >>> 0})\n`);
          break;
        case '9':
        case 'q':
          return;
        default:
          break;
      }
    }
  } catch (error) {
    if (!(error instanceof MenuClosed)) throw error;
  } finally {
    rl.close();
  }
}

/** stdin ended: leave the menu as with '9'. */
class MenuClosed extends Error {}

interface MonitorFlags {
  config?: string;
  name?: string;
  port: number;
  time: number;
  daemons?: string[];
  once?: boolean;
  json?: boolean;
  http?: string[];
  wait?: number;
  partition?: string;
  cancelPartition?: boolean;
  flowControl?: string;
  terminate?: string[];
  reload?: boolean;
  clear: boolean;
  menu?: boolean;
}

function positiveNumber(label: string) {
  return (value: string): number => {
    const number = Number(value);
    if (!Number.isFinite(number) || number < 0) throw new InvalidArgumentError(`${label} must be a non-negative number`);
    return number;
  };
}

function rowsJson(rows: readonly MonitorRow[]): string {
  return JSON.stringify({ atMs: Date.now(), daemons: rows });
}

async function runMonitor(flags: MonitorFlags): Promise<void> {
  const write = (text: string) => process.stdout.write(text);
  const periodMs = flags.time * 1000;
  const waitMs = flags.wait ?? Math.min(2000, Math.max(200, periodMs / 2));
  const clearScreen = flags.clear && process.stdout.isTTY && !flags.json;
  const show = (rows: MonitorRow[], config: SpreadConfig | null, previous: Map<string, MonitorRow>, clear: boolean) => {
    if (flags.json) write(`${rowsJson(rows)}\n`);
    else write(`${clear ? '\x1b[2J\x1b[H' : ''}${formatRound(rows, config, previous)}`);
  };

  if (flags.http) {
    const actions = flags.partition ?? flags.cancelPartition ?? flags.flowControl ?? flags.terminate ?? flags.reload;
    if (actions !== undefined) throw new InvalidArgumentError('--http reads status only; monitor commands need the UDP protocol (-c)');
    const urls = flags.http;
    let previous = new Map<string, MonitorRow>();
    for (;;) {
      const rows = await pollHttp(urls);
      show(rows, null, previous, clearScreen && !flags.once);
      previous = new Map(rows.filter((row) => row.ok).map((row) => [row.name, row]));
      if (flags.once) {
        process.exitCode = rows.every((row) => row.ok) ? 0 : 1;
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, periodMs));
    }
  }

  const monitor = await UdpMonitor.open({ configPath: flags.config, name: flags.name, port: flags.port });
  try {
    monitor.selected = selectDaemons(monitor.config, flags.daemons);
    let acted = false;
    if (flags.cancelPartition) {
      await monitor.cancelPartition();
      acted = true;
    }
    if (flags.partition !== undefined) {
      monitor.partition = parsePartitionSpec(flags.partition, monitor.config);
      await monitor.sendPartition(flags.once);
      acted = true;
    }
    if (flags.flowControl !== undefined) {
      monitor.flowControl = parseFlowControlSpec(flags.flowControl, monitor.config);
      await monitor.sendFlowControl();
      acted = true;
    }
    if (flags.terminate !== undefined) {
      await monitor.terminate(selectDaemons(monitor.config, flags.terminate));
      acted = true;
    }
    if (flags.reload) {
      await monitor.reload();
      acted = true;
    }
    if (acted && !flags.json) write('monitor commands sent\n');

    const interactive = flags.menu === true || (!flags.once && !flags.json && !acted && process.stdin.isTTY === true);
    let stopped = false;
    const loop = async () => {
      for (;;) {
        const { rows, previous } = await monitor.poll(waitMs);
        if (stopped) return;
        if (rows.length > 0) show(rows, monitor.config, previous, clearScreen && !interactive);
        if (flags.once) {
          process.exitCode = rows.every((row) => row.ok) ? 0 : 1;
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, Math.max(0, periodMs - waitMs)));
        if (stopped) return;
      }
    };
    if (interactive) {
      const polling = loop();
      await runMenu(monitor, write);
      stopped = true;
      await Promise.race([polling, new Promise((resolve) => setTimeout(resolve, waitMs))]);
    } else {
      await new Promise<void>((resolve, reject) => {
        const stop = () => {
          stopped = true;
          resolve();
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
        loop().then(resolve, reject);
      });
    }
  } finally {
    await monitor.close();
  }
}

export function monitorCommand(): Command {
  return new Command('monitor')
    .description('spmonitor: status of every daemon of a configuration, flow control, partitions, reload')
    .option('-c, --config <file>', 'spread.conf (same file as the daemons: the hash must match)')
    .option('-n, --name <daemon>', 'which configured daemon entry this host is')
    .option('-p, --port <port>', 'local UDP port for status replies', positiveNumber('port'), DEFAULT_MONITOR_PORT)
    .option('-t, --time <seconds>', 'status period', positiveNumber('time'), 10)
    .option('-d, --daemons <names...>', 'daemons to poll (default all; "none" for none)')
    .option('--once', 'one status round, then exit (1 if a daemon did not answer)')
    .option('--json', 'one JSON line per round')
    .option('--wait <ms>', 'how long a round waits for replies', positiveNumber('wait'))
    .option('--http <urls...>', 'read tspread daemons\' /status URLs instead of the UDP protocol')
    .option('--partition <spec>', 'send a partition: "1,1,2" or "d1=1,d2=2" (DangerousMonitor); re-sent every 25 s')
    .option('--cancel-partition', 'send an all-zero partition')
    .option('--flow-control <spec>', 'send flow control: "window=200,d1=30,d2=30/10" (DangerousMonitor; Spread and tspread daemons apply it)')
    .option('--terminate <names...>', 'make these daemons exit (DangerousMonitor)')
    .option('--reload', 'ask every daemon to re-read its configuration (Spread daemons do; tspread daemons log it as not applied yet)')
    .option('--no-clear', 'do not clear the terminal between rounds')
    .option('--menu', 'show the menu even when stdin is not a terminal (commands from stdin)')
    .action(async (flags: MonitorFlags) => {
      try {
        await runMonitor(flags);
      } catch (error) {
        console.error(`monitor: ${(error as Error).message}`);
        process.exitCode = 2;
      }
    });
}
