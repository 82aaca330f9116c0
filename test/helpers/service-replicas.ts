/**
 * `tspread svc counter` replicas as processes, and clients keeping a counter
 * service busy, for the services tests and benchmark.
 */
import { connect, type Session } from '../../src/client/index.js';
import { ServiceClient } from '../../src/apps/services/index.js';
import { ToolProcess } from '../fake-daemon/processes.js';
import type { StartedDaemon } from './daemon.js';
import { waitUntil } from './log-collectors.js';

export const daemonName = (daemon: Pick<StartedDaemon, 'port'>): string => `${daemon.port}@127.0.0.1`;

interface LogLine {
  msg: string;
  state?: { value: number };
  replacementPid?: number;
  member?: string;
  pid: number;
}

export class CounterReplica {
  readonly tool: ToolProcess;

  constructor(daemon: Pick<StartedDaemon, 'port'>, group: string, extraArgs: string[] = []) {
    this.tool = new ToolProcess(['svc', 'counter', '-g', group, '-s', daemonName(daemon), ...extraArgs]);
  }

  /** Log lines (pino JSON) of this process and of replacements it started (they share its stdout). */
  lines(): LogLine[] {
    return this.tool.stdout.split('\n').flatMap((line) => (line.startsWith('{') ? [JSON.parse(line) as LogLine] : []));
  }

  /** Resolves once `count` replicas printed into this stdout that they are in sync. */
  async synced(count = 1, timeoutMs = 30_000): Promise<void> {
    await waitUntil(() => this.lines().filter((line) => line.msg === 'in sync with the service group').length >= count, () => `replica not in sync:\n${this.tool.stdout}\n${this.tool.stderr}`, timeoutMs);
  }

  /** SIGTERM to `pid` (this process by default); resolves with the counter value it stopped with. */
  async stop(pid = this.tool.child.pid!, timeoutMs = 15_000): Promise<number> {
    process.kill(pid, 'SIGTERM');
    await waitUntil(() => this.#stoppedLine(pid) !== undefined, () => `replica ${pid} did not stop:\n${this.tool.stdout}`, timeoutMs);
    return this.#stoppedLine(pid)!.state!.value;
  }

  kill(): void {
    this.tool.kill();
  }

  #stoppedLine(pid: number): LogLine | undefined {
    return this.lines().find((line) => line.pid === pid && line.msg === 'stopped');
  }
}

/** Clients calling `increment` back to back, each on its own daemon, recording every result and latency. */
export class IncrementLoad {
  readonly results: number[] = [];
  readonly errors: string[] = [];
  /** [start ms (performance.now), latency ms] per acknowledged call. */
  readonly latencies: [number, number][] = [];
  #running = true;
  #loops: Promise<void>[] = [];
  #clients: ServiceClient[] = [];

  static start(daemons: Pick<StartedDaemon, 'port'>[], group: string): Promise<IncrementLoad> {
    return IncrementLoad.startWith(
      daemons.map((daemon) => () => connect({ daemon: daemonName(daemon) })),
      group,
    );
  }

  /** One client per way to connect (e.g. to daemons in network namespaces). */
  static async startWith(connects: (() => Promise<Session>)[], group: string): Promise<IncrementLoad> {
    const load = new IncrementLoad();
    load.#clients = await Promise.all(connects.map((open) => ServiceClient.open({ group, connect: open, timeoutMs: 60_000, retryMs: 300 })));
    load.#loops = load.#clients.map((client) => load.#loop(client));
    return load;
  }

  /** Resolves once `more` further calls have been acknowledged. */
  async advance(more: number, timeoutMs = 60_000): Promise<void> {
    const target = this.results.length + more;
    await waitUntil(() => this.results.length >= target || this.errors.length > 0, () => `load stuck at ${this.results.length} of ${target}`, timeoutMs);
  }

  async stop(): Promise<void> {
    this.#running = false;
    await Promise.all(this.#loops);
    await Promise.all(this.#clients.map((client) => client.close()));
  }

  async #loop(client: ServiceClient): Promise<void> {
    while (this.#running) {
      const start = performance.now();
      try {
        this.results.push((await client.call('increment')) as number);
        this.latencies.push([start, performance.now() - start]);
      } catch (error) {
        this.errors.push((error as Error).message);
        return;
      }
    }
  }
}
