/**
 * A vip cluster in network namespaces: SpreadLab's hosts (one daemon each) plus one
 * client host on the same bridge; on every host a `tspread vip` process (inside the
 * namespace, reaching its daemon over its own Unix socket directory) and a tiny HTTP
 * server on 0.0.0.0 that answers with the host's number, so whoever holds a virtual
 * address answers for it.
 *
 *   const lab = await VipLab.start({ addresses: 6 });
 *   lab.holders();                 // virtual address → hosts that have it configured
 *   lab.sampler() / lab.prober()   // 50 ms samples of the kernels / HTTP answers
 *   await lab.destroy();           // every process killed by pid, namespaces deleted
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { CLI_PATH } from './daemon.js';
import { SpreadLab } from './netns-spread.js';

const HTTP_PORT = 8080;

export interface VipLabOptions {
  hosts?: number;
  addresses?: number;
  /** Daemon configuration lines before the segment (default: none, i.e. tspread's LAN timeouts). */
  spreadLines?: string[];
  /** Directives every host's vip.conf gets after the generated ones. */
  extraDirectives?: string[];
  /** Directives for one host's vip.conf (e.g. its Prefer list), after extraDirectives. */
  directivesOf?: (host: number, addresses: string[]) => string[];
  /** Replaces the VirtualInterfaces device of one host (to test an unknown device). */
  deviceOf?: (host: number) => string;
  /** Up/Down hooks that append `up|down <address> <device>` to hookLog(). */
  hooks?: boolean;
}

/** One 50 ms sample: which hosts hold each virtual address, at local time `at`. */
export interface HolderSample {
  at: number;
  holders: Map<string, number[]>;
}

/** One HTTP probe: which host answered for `address`, null when none did. */
export interface ProbeSample {
  at: number;
  address: string;
  host: number | null;
}

/** What VipLab.failOver() measured. */
export interface FailOver {
  moved: string[];
  heldMs: number;
  answeredMs: number;
}

export class VipLab {
  readonly spread: SpreadLab;
  readonly hosts: number;
  readonly client: number;
  readonly addresses: string[];
  readonly vips: (ChildProcess | null)[];
  readonly vipOutput: string[];
  private readonly helpers: ChildProcess[] = [];

  private constructor(spread: SpreadLab, hosts: number, addresses: string[]) {
    this.spread = spread;
    this.hosts = hosts;
    this.client = hosts;
    this.addresses = addresses;
    this.vips = Array.from({ length: hosts }, () => null);
    this.vipOutput = Array.from({ length: hosts }, () => '');
  }

  static async start(options: VipLabOptions = {}): Promise<VipLab> {
    const hosts = options.hosts ?? 3;
    const spread = await SpreadLab.start(hosts, options.spreadLines ?? [], { net: { prefix: 'tsv' }, extraHosts: 1 });
    const addresses = Array.from({ length: options.addresses ?? 6 }, (_, i) => spread.net.subnetAddress(101 + i));
    const lab = new VipLab(spread, hosts, addresses);
    try {
      for (let host = 0; host < hosts; host++) {
        lab.writeConfig(host, options);
        lab.startHttpServer(host);
      }
    } catch (error) {
      await lab.destroy();
      throw error;
    }
    return lab;
  }

  get device(): string {
    return this.spread.net.device;
  }

  configPath(host: number): string {
    return join(this.spread.scratch, `vip-h${host}.conf`);
  }

  controlPath(host: number): string {
    return join(this.spread.scratch, `vip-h${host}.sock`);
  }

  private get hookLogPath(): string {
    return join(this.spread.scratch, 'hooks.log');
  }

  /** What the Up/Down hooks wrote ('' before any ran). */
  hookLog(): string {
    return existsSync(this.hookLogPath) ? readFileSync(this.hookLogPath, 'utf8') : '';
  }

  /** Writes the hook scripts; returns their directives. */
  private hookDirectives(): string[] {
    return ['up', 'down'].map((direction) => {
      const script = join(this.spread.scratch, `hook-${direction}`);
      writeFileSync(script, `#!/bin/sh\necho "${direction} $1 $2" >> ${this.hookLogPath}\n`, { mode: 0o755 });
      return `${direction === 'up' ? 'Up' : 'Down'} = ${script}`;
    });
  }

  private writeConfig(host: number, options: VipLabOptions): void {
    const device = options.deviceOf?.(host) ?? this.device;
    const lines = [
      'Spread = 4803',
      'SpreadRetryInterval = 300ms',
      'Group = vip',
      `Control = ${this.controlPath(host)}`,
      'Mature = 1s',
      'Balance {',
      '  Interval = 1s',
      '  AcquisitionsPerRound = 1',
      '}',
      'VirtualInterfaces {',
      ...this.addresses.map((address) => `  ${device}:${address}/24`),
      '}',
      `Notify { ${this.device}:${this.spread.net.address(this.client)}/32 arp-cache }`,
      ...(options.extraDirectives ?? []),
      ...(options.directivesOf?.(host, this.addresses) ?? []),
      ...(options.hooks === true ? this.hookDirectives() : []),
    ];
    writeFileSync(this.configPath(host), `${lines.join('\n')}\n`);
  }

  /** Starts `tspread vip` in host `host`'s namespace. */
  startVip(host: number, extraArgs: string[] = []): ChildProcess {
    if (this.vips[host] !== null) throw new Error(`vip on host ${host} is running`);
    const daemon = this.spread.daemons[host];
    const child = this.spread.net.spawn(
      host,
      process.execPath,
      [CLI_PATH, 'vip', '-c', this.configPath(host), '--socket-dir', daemon.unixDir, ...extraArgs],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.vips[host] = child;
    child.stdout!.setEncoding('utf8');
    child.stderr!.setEncoding('utf8');
    child.stdout!.on('data', (text: string) => (this.vipOutput[host] += text));
    child.stderr!.on('data', (text: string) => (this.vipOutput[host] += text));
    child.once('exit', () => {
      if (this.vips[host] === child) this.vips[host] = null;
    });
    return child;
  }

  killVip(host: number): void {
    const pid = this.vips[host]?.pid;
    if (pid !== undefined) process.kill(pid, 'SIGKILL');
    this.vips[host] = null;
  }

  /** SIGTERM: the instance releases its addresses and leaves; resolves when it exited. */
  async stopVip(host: number): Promise<void> {
    const child = this.vips[host];
    if (child === null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  }

  private startHttpServer(host: number): void {
    const script = `require('http').createServer((q, r) => r.end('${host}')).listen(${HTTP_PORT}, '0.0.0.0')`;
    this.helpers.push(this.spread.net.spawn(host, process.execPath, ['-e', script], { stdio: 'ignore' }));
  }

  /** Virtual address → the hosts that have it configured on the lab's device, read now. */
  holders(): Map<string, number[]> {
    const result = new Map(this.addresses.map((address) => [address, [] as number[]]));
    for (let host = 0; host < this.hosts; host++) {
      const text = execFileSync('ip', ['-n', this.spread.net.hostNs(host), '-o', '-4', 'addr', 'show', 'dev', this.device], { encoding: 'utf8' });
      for (const address of this.addresses) if (text.includes(` ${address}/`)) result.get(address)!.push(host);
    }
    return result;
  }

  /**
   * Samples every host's kernel every `intervalMs` in one shell loop (cheaper than a
   * process per read); `stop()` ends it and returns the samples.
   */
  sampler(intervalMs = 50): { samples: HolderSample[]; stop: () => HolderSample[] } {
    const namespaces = Array.from({ length: this.hosts }, (_, host) => this.spread.net.hostNs(host));
    const script = `while :; do for n in ${namespaces.join(' ')}; do echo "@$n"; ip -n $n -o -4 addr show dev ${this.device}; done; echo "#"; sleep ${intervalMs / 1000}; done`;
    const child = spawn('bash', ['-c', script], { stdio: ['ignore', 'pipe', 'ignore'] });
    this.helpers.push(child);
    const samples: HolderSample[] = [];
    let current = new Map(this.addresses.map((address) => [address, [] as number[]]));
    let host = -1;
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (line.startsWith('@')) host = namespaces.indexOf(line.slice(1));
      else if (line === '#') {
        samples.push({ at: Date.now(), holders: current });
        current = new Map(this.addresses.map((address) => [address, [] as number[]]));
      } else for (const address of this.addresses) if (line.includes(` ${address}/`)) current.get(address)!.push(host);
    });
    return {
      samples,
      stop: () => {
        if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, 'SIGKILL');
        return samples;
      },
    };
  }

  /**
   * Asks every virtual address over HTTP from the client host, a new request every
   * `intervalMs` whether or not the last one finished (so a request stuck on a dead host
   * does not hide the moment the address answers again); each gives up after `timeoutMs`.
   */
  prober(intervalMs = 50, timeoutMs = 300): { samples: ProbeSample[]; stop: () => ProbeSample[] } {
    const script = `
      const http = require('http');
      function ask(address) {
        const done = (host) => process.stdout.write(JSON.stringify({ at: Date.now(), address, host }) + '\\n');
        const request = http.get({ host: address, port: ${HTTP_PORT}, path: '/', agent: false, timeout: ${timeoutMs} }, (response) => {
          let body = ''; response.on('data', (c) => (body += c)); response.on('end', () => done(Number(body)));
        });
        request.on('timeout', () => request.destroy(new Error('timeout')));
        request.on('error', () => done(null));
      }
      setInterval(() => ${JSON.stringify(this.addresses)}.forEach(ask), ${intervalMs});`;
    const child = this.spread.net.spawn(this.client, process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'ignore'] });
    this.helpers.push(child);
    const samples: ProbeSample[] = [];
    createInterface({ input: child.stdout! }).on('line', (line) => samples.push(JSON.parse(line) as ProbeSample));
    return {
      samples,
      stop: () => {
        if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, 'SIGKILL');
        return samples;
      },
    };
  }

  /** One `curl` from the client host: the number of the host that answered, or null. */
  curl(address: string): number | null {
    try {
      const text = execFileSync('ip', ['netns', 'exec', this.spread.net.hostNs(this.client), 'curl', '-s', '-m', '1', `http://${address}:${HTTP_PORT}/`], {
        encoding: 'utf8',
      });
      return text === '' ? null : Number(text);
    } catch {
      return null;
    }
  }

  /** The MAC address the client host has cached for `address` (null when none). */
  clientNeighbour(address: string): string | null {
    const text = execFileSync('ip', ['-n', this.spread.net.hostNs(this.client), 'neigh', 'show', address], { encoding: 'utf8' });
    return /lladdr (\S+)/.exec(text)?.[1] ?? null;
  }

  /** `ip -n <host's namespace> …args`. */
  ip(host: number, args: string[]): string {
    return execFileSync('ip', ['-n', this.spread.net.hostNs(host), ...args], { encoding: 'utf8' });
  }

  /** A command run inside host `host`'s namespace. */
  exec(host: number, command: string, args: string[]): string {
    return execFileSync('ip', ['netns', 'exec', this.spread.net.hostNs(host), command, ...args], { encoding: 'utf8' });
  }

  /** The MAC address of host `host`'s device. */
  mac(host: number): string {
    const text = execFileSync('ip', ['-n', this.spread.net.hostNs(host), 'link', 'show', this.device], { encoding: 'utf8' });
    return /link\/ether (\S+)/.exec(text)![1];
  }

  /** `tspread vip --status --json` run in host `host`'s namespace. */
  status(host: number, request: string[] = ['--status']): { members: { name: string; holds: string[] }[]; errors: string[] } {
    const text = this.exec(host, process.execPath, [CLI_PATH, 'vip', '-c', this.configPath(host), ...request, '--json']);
    return JSON.parse(text) as { members: { name: string; holds: string[] }[]; errors: string[] };
  }

  /** Virtual addresses host `host` has configured now. */
  heldBy(host: number): string[] {
    return [...this.holders()].filter(([, hosts]) => hosts.includes(host)).map(([address]) => address);
  }

  /** True when every virtual address is configured on exactly one of `among`. */
  everyAddressOnce(among: number[]): boolean {
    return [...this.holders().values()].every((hosts) => hosts.filter((h) => among.includes(h)).length === 1);
  }

  /**
   * Runs `event` against `victim` and measures, from just before it: until a kernel sample
   * (`samples`, from sampler()) shows every address on exactly one of the other hosts
   * (`heldMs`), and until each address the victim held was answered over HTTP by another
   * host (`answeredMs`, from `probes`, prober()).
   */
  async failOver(victim: number, event: () => void | Promise<void>, probes: ProbeSample[], samples: HolderSample[], timeoutMs = 10_000): Promise<FailOver> {
    const moved = this.heldBy(victim);
    const others = Array.from({ length: this.hosts }, (_, h) => h).filter((h) => h !== victim);
    const since = Date.now();
    await event();
    const coveredSample = () =>
      samples.find((sample) => sample.at > since && [...sample.holders.values()].every((hosts) => hosts.filter((h) => others.includes(h)).length === 1));
    await this.until(() => coveredSample() !== undefined, `host ${victim}'s addresses on the other hosts`, timeoutMs);
    const heldMs = coveredSample()!.at - since;
    const firstAnswers = () => moved.map((address) => probes.find((p) => p.address === address && p.at > since && p.host !== null && p.host !== victim));
    await this.until(() => firstAnswers().every((p) => p !== undefined), `host ${victim}'s addresses answering`, timeoutMs);
    const answeredMs = Math.max(...firstAnswers().map((p) => p!.at - since));
    return { moved, heldMs, answeredMs };
  }

  /** Polls `ready` every 50 ms; throws with every vip's log tail when it does not hold in time. */
  async until(ready: () => boolean, what: string, timeoutMs = 20_000): Promise<number> {
    const started = Date.now();
    while (!ready()) {
      if (Date.now() - started > timeoutMs) throw new Error(`${what} not within ${timeoutMs} ms\n${this.tails()}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return Date.now() - started;
  }

  tails(lines = 8): string {
    return this.vipOutput.map((out, host) => `--- vip ${host}\n${out.split('\n').slice(-lines).join('\n')}`).join('\n') + `\n${this.spread.tails(4)}`;
  }

  /** Kills every process by pid (vips first, so their guards clean up), then the namespaces. */
  async destroy(): Promise<void> {
    for (let host = 0; host < this.hosts; host++) this.killVip(host);
    for (const helper of this.helpers) {
      if (helper.pid !== undefined && helper.exitCode === null) {
        try {
          process.kill(helper.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
    await this.spread.destroy();
  }
}
