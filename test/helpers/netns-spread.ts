/**
 * Real daemons in network namespaces, with clients in the test process that reach them
 * over their Unix sockets (a socket file crosses namespaces) and record JSON Lines logs
 * for the EVS checker.
 *
 *   const lab = await SpreadLab.start(3);        // d1…d3, each in its own namespace
 *   const a = await lab.client(0, 'a');          // on d1
 *   a.join('g'); await a.untilView('g', (v) => v.members.length === 3);
 *   lab.partition([[0], [1, 2]]); … lab.heal(); lab.kill(1); await lab.restart(1);
 *   lab.check();                                 // checkEvs over every client's log file
 *   await lab.destroy();                         // every process killed, namespaces deleted
 *
 * Every daemon process and namespace is tracked so `destroy()` (in afterAll) removes them
 * even when a test failed halfway; processes are killed by pid.
 */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import {
  checkEvs,
  type ClientLog,
  type ClientLogRecorder,
  formatViolations,
  loadLogs,
  markDisconnected,
  openJsonLinesRecorder,
  payloadWithId,
  type Violation,
} from '../../src/checker/index.js';
import { connect, type MembershipMessage, type Message, type Service, type Session } from '../../src/client/index.js';
import { CLI_PATH } from './daemon.js';
import { NetnsLab, type NetnsLabOptions } from './netns.js';

/** Fast membership for tests (all nine timeouts must be given, §8.5). */
export const FAST_TIMEOUTS = [
  'TokenTimeout = 600',
  'HurryTimeout = 200',
  'AliveTimeout = 100',
  'JoinTimeout = 100',
  'RepTimeout = 300',
  'SegTimeout = 200',
  'GatherTimeout = 500',
  'FormTimeout = 500',
  'LookupTimeout = 1500',
];

const SEGMENT_PORT = 4803;
/** Every lab daemon's client port (each has its own namespace and socket directory). */
export const CLIENT_PORT = 4803;

export interface LabDaemon {
  index: number;
  name: string;
  unixDir: string;
  process: ChildProcess | null;
  output: string;
  incarnation: number;
}

export class LabClient {
  readonly recorder: ClientLogRecorder;
  readonly session: Session;
  readonly daemon: number;
  readonly file: string;
  /** Regular and transitional views per group, in arrival order. */
  readonly views = new Map<string, MembershipMessage[]>();
  readonly received: Message[] = [];
  closed = false;
  private waiters: (() => void)[] = [];

  constructor(session: Session, recorder: ClientLogRecorder, daemon: number, file: string) {
    this.session = session;
    this.recorder = recorder;
    this.daemon = daemon;
    this.file = file;
    const take = (message: Message) => {
      recorder.received(message);
      this.received.push(message);
      if (message.kind === 'membership') {
        const list = this.views.get(message.group) ?? [];
        list.push(message);
        this.views.set(message.group, list);
      }
      this.wake();
    };
    session.on('message', take);
    session.on('membership', take);
    session.on('reject', take);
    session.on('close', () => {
      this.closed = true;
      recorder.closed('connection closed');
      this.wake();
    });
  }

  get name(): string {
    return this.session.privateGroup;
  }

  join(group: string): void {
    this.recorder.joinRequested(group);
    this.session.join(group);
  }

  leave(group: string): void {
    this.recorder.leaveRequested(group);
    this.session.leave(group);
  }

  send(groups: string[], service: Service = 'agreed', selfDiscard = false): string {
    const id = this.recorder.nextId();
    this.recorder.sent({ id, service, groups, selfDiscard });
    this.session.multicast(groups, payloadWithId(id, 16), { service, selfDiscard });
    return id;
  }

  /** The latest regular view of `group`. */
  view(group: string): MembershipMessage | undefined {
    return (this.views.get(group) ?? []).filter((m) => !m.transitional && m.cause !== 'self-leave').at(-1);
  }

  until(ready: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.name}: ${what} not within ${timeoutMs} ms; views: ${this.describeViews()}`)), timeoutMs);
      const check = () => {
        if (ready()) {
          clearTimeout(timer);
          resolve();
        } else this.waiters.push(check);
      };
      check();
    });
  }

  /** Waits for a regular view of `group` with exactly `members` (private group names). */
  untilMembers(group: string, members: string[], timeoutMs = 20_000): Promise<void> {
    const want = [...members].sort().join(',');
    return this.until(() => [...(this.view(group)?.members ?? [])].sort().join(',') === want, `view of ${group} = [${want}]`, timeoutMs);
  }

  /** Waits until every id in `ids` was delivered here. */
  untilDelivered(ids: string[], timeoutMs = 20_000): Promise<void> {
    const delivered = () => {
      const seen = new Set(this.recorder.log().entries.flatMap((e) => (e.type === 'data' ? [e.id] : [])));
      return ids.every((id) => seen.has(id));
    };
    return this.until(delivered, `${ids.length} messages`, timeoutMs);
  }

  describeViews(): string {
    return [...this.views]
      .map(([group, list]) => `${group}: ${list.map((m) => `${m.cause}@${m.gid.procId}.${m.gid.time}.${m.gid.index}[${m.members.join(' ')}]`).join(' → ')}`)
      .join('; ');
  }

  private wake(): void {
    for (const wake of this.waiters.splice(0)) wake();
  }
}

export interface SpreadLabOptions {
  /** The namespaces' links (MTU, name prefix). */
  net?: NetnsLabOptions;
  /** Namespaces after the daemons' on the same bridge, with no daemon (e.g. a client host). */
  extraHosts?: number;
  /** Node options before the daemon's script (e.g. ['--cpu-prof', '--cpu-prof-dir', dir]). */
  nodeArgs?: string[];
  /** Environment variables added for the daemons. */
  env?: Record<string, string>;
  /** Extra `tspread daemon` arguments for every daemon (e.g. ['--http', '127.0.0.1:4880'], reachable inside its namespace). */
  daemonArgs?: string[];
}

export class SpreadLab {
  readonly net: NetnsLab;
  readonly scratch: string;
  readonly configPath: string;
  readonly daemons: LabDaemon[];
  readonly clients: LabClient[] = [];
  private readonly options: SpreadLabOptions;
  private nextClient = 0;

  private constructor(net: NetnsLab, scratch: string, configPath: string, count: number, options: SpreadLabOptions) {
    this.net = net;
    this.scratch = scratch;
    this.configPath = configPath;
    this.options = options;
    this.daemons = Array.from({ length: count }, (_, index) => {
      const unixDir = join(scratch, `d${index + 1}`);
      mkdirSync(unixDir);
      return { index, name: `d${index + 1}`, unixDir, process: null, output: '', incarnation: 0 };
    });
  }

  /** Builds the namespaces, writes spread.conf and starts every daemon. */
  static async start(count: number, extraLines: string[] = FAST_TIMEOUTS, options: SpreadLabOptions = {}): Promise<SpreadLab> {
    const net = NetnsLab.create(count + (options.extraHosts ?? 0), options.net);
    const scratch = mkdtempSync(join(tmpdir(), 'tspread-netns-'));
    const subnetBroadcast = net.address(0).replace(/\.\d+$/, '.255');
    const config = [
      ...extraLines,
      `Spread_Segment ${subnetBroadcast}:${SEGMENT_PORT} {`,
      ...Array.from({ length: count }, (_, i) => `\td${i + 1} ${net.address(i)}`),
      '}',
      '',
    ].join('\n');
    const configPath = join(scratch, 'spread.conf');
    writeFileSync(configPath, config);
    const lab = new SpreadLab(net, scratch, configPath, count, options);
    try {
      await Promise.all(lab.daemons.map((daemon) => lab.startDaemon(daemon.index)));
    } catch (error) {
      await lab.destroy();
      throw error;
    }
    return lab;
  }

  /** Starts (or restarts) daemon `index` in its namespace; resolves at 'daemon ready'. */
  async startDaemon(index: number, timeoutMs = 20_000): Promise<void> {
    const daemon = this.daemons[index];
    if (daemon.process !== null) throw new Error(`${daemon.name} is running`);
    daemon.incarnation += 1;
    daemon.output = '';
    const child = this.net.spawn(
      index,
      process.execPath,
      [...(this.options.nodeArgs ?? []), CLI_PATH, 'daemon', '-c', this.configPath, '-n', daemon.name, '-p', String(CLIENT_PORT), '--unix-dir', daemon.unixDir, '--state-dir', daemon.unixDir, ...(this.options.daemonArgs ?? [])],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...this.options.env } },
    );
    daemon.process = child;
    child.stdout!.setEncoding('utf8');
    child.stderr!.setEncoding('utf8');
    child.stdout!.on('data', (text: string) => (daemon.output += text));
    child.stderr!.on('data', (text: string) => (daemon.output += text));
    child.once('exit', () => {
      if (daemon.process === child) daemon.process = null;
    });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${daemon.name} not ready in ${timeoutMs} ms:\n${daemon.output}`)), timeoutMs);
      const poll = setInterval(() => {
        if (daemon.output.includes('"msg":"daemon ready"')) {
          clearTimeout(timer);
          clearInterval(poll);
          resolve();
        } else if (daemon.process !== child) {
          clearTimeout(timer);
          clearInterval(poll);
          reject(new Error(`${daemon.name} exited:\n${daemon.output}`));
        }
      }, 20);
    });
  }

  /** kill -9: the daemon's clients see their connections close. */
  kill(index: number): void {
    const child = this.daemons[index].process;
    if (child?.pid !== undefined) process.kill(child.pid, 'SIGKILL');
    this.daemons[index].process = null;
  }

  async restart(index: number): Promise<void> {
    await this.startDaemon(index);
  }

  partition(components: number[][]): void {
    this.net.partition(components);
  }

  heal(): void {
    this.net.heal();
  }

  /** A client of daemon `index`; its log goes to a JSON Lines file in the scratch directory. */
  async client(index: number, privateName: string): Promise<LabClient> {
    const daemon = this.daemons[index];
    const session = await connect({ daemon: String(CLIENT_PORT), unixSocketDir: daemon.unixDir, privateName, timeoutMs: 10_000 });
    const file = join(this.scratch, `client-${this.nextClient++}.jsonl`);
    const recorder = openJsonLinesRecorder(file, {
      privateGroup: session.privateGroup,
      daemon: daemon.name,
      session: `${session.privateGroup}@${daemon.incarnation}.${this.nextClient}`,
    });
    const client = new LabClient(session, recorder, index, file);
    this.clients.push(client);
    return client;
  }

  /** Every client's log, read back from its file. */
  logs(): ClientLog[] {
    return loadLogs(...this.clients.map((client) => client.file)).map((log) => {
      const client = this.clients.find((c) => c.recorder.session === log.session);
      return client?.closed === true && log.entries.at(-1)?.type !== 'disconnected' ? markDisconnected(log) : log;
    });
  }

  /** checkEvs over every client's log; throws with the violations and each daemon's tail. */
  check(options: { expectQuiescent?: boolean } = { expectQuiescent: true }): Violation[] {
    const violations = checkEvs(this.logs(), options);
    if (violations.length > 0) throw new Error(`EVS checker:\n${formatViolations(violations)}\n${this.tails(15)}`);
    return violations;
  }

  /** SIGTERM to every running daemon (a clean exit, e.g. to write a CPU profile); SIGKILL after `timeoutMs`. */
  async stopDaemons(timeoutMs = 5000): Promise<void> {
    await Promise.all(
      this.daemons.map(async (daemon) => {
        const child = daemon.process;
        if (child === null || child.exitCode !== null || child.signalCode !== null) return;
        const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
        await exited;
        clearTimeout(timer);
      }),
    );
  }

  /** Disconnects clients, kills every daemon by pid, deletes the namespaces and files. */
  async destroy(): Promise<void> {
    await Promise.all(this.clients.map((client) => (client.closed ? undefined : client.session.disconnect().catch(() => undefined))));
    this.destroyNow();
  }

  /** Synchronous part of destroy(), for exit handlers: kills every daemon by pid, deletes the namespaces and files. */
  destroyNow(): void {
    for (const daemon of this.daemons) {
      const pid = daemon.process?.pid;
      if (pid !== undefined) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      daemon.process = null;
    }
    this.net.destroy();
    rmSync(this.scratch, { recursive: true, force: true });
  }

  /** Each daemon's last log lines (for failure messages). */
  tails(lines = 10): string {
    return this.daemons.map((d) => `--- ${d.name}\n${d.output.split('\n').slice(-lines).join('\n')}`).join('\n');
  }
}
