/**
 * A small lab of network namespaces for real-process tests: N "hosts", each a
 * namespace with one veth link into a private "switch" namespace that holds the
 * bridges. Nothing is added to the root namespace. A partition moves host links
 * between bridges; healing puts them all back on bridge 0.
 *
 * Needs root and iproute2. Every namespace is deleted by destroy(); names carry a
 * per-process prefix so parallel runs never collide.
 */
import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';

const IP = 'ip';

function ip(args: string[]): string {
  return execFileSync(IP, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

export function netnsAvailable(): string | null {
  if (process.getuid?.() !== 0) return 'network namespace tests need root';
  try {
    ip(['netns', 'list']);
    return null;
  } catch (error) {
    return `iproute2 is not usable: ${(error as Error).message}`;
  }
}

/** Naming of a lab: every namespace and link name starts with `prefix`. */
export interface NetnsLabOptions {
  /** MTU of every link (veth ends and bridges); default the kernel's (1500). */
  mtu?: number;
  /** Namespace, bridge and veth prefix (default "tsp"; device names keep their short defaults then). */
  prefix?: string;
}

export class NetnsLab {
  readonly hostCount: number;
  /** The host side of each host's veth (the device its address is on). */
  readonly device: string;
  readonly mtu: number | null;
  private readonly prefix: string;
  private readonly linkPrefix: string;
  private readonly subnet: number;
  private bridgeCount = 0;
  private destroyed = false;

  private constructor(hostCount: number, prefix: string, linkPrefix: string, subnet: number, mtu: number | null) {
    this.hostCount = hostCount;
    this.prefix = prefix;
    this.linkPrefix = linkPrefix;
    this.device = `${linkPrefix}eth0`;
    this.mtu = mtu;
    this.subnet = subnet;
  }

  /** Builds `hostCount` hosts on one bridge, addresses 10.<subnet>.0.<i+1>/24. */
  static create(hostCount: number, options: NetnsLabOptions = {}): NetnsLab {
    const id = `${process.pid % 100000}${Math.floor(Math.random() * 100)}`;
    const named = options.prefix !== undefined;
    const lab = new NetnsLab(hostCount, `${options.prefix ?? 'tsp'}${id}`, named ? options.prefix! : '', 100 + (process.pid % 150), options.mtu ?? null);
    try {
      lab.build();
    } catch (error) {
      lab.destroy();
      throw error;
    }
    return lab;
  }

  private get switchNs(): string {
    return `${this.prefix}-sw`;
  }

  hostNs(index: number): string {
    return `${this.prefix}-h${index}`;
  }

  address(index: number): string {
    return `10.${this.subnet}.0.${index + 1}`;
  }

  /** `mtu N` for `ip link add/set`, or nothing for the kernel's default. */
  private get mtuArgs(): string[] {
    return this.mtu === null ? [] : ['mtu', String(this.mtu)];
  }

  /** Another address of the hosts' subnet (`.<last>`), e.g. for virtual addresses. */
  subnetAddress(last: number): string {
    return `10.${this.subnet}.0.${last}`;
  }

  private port(index: number): string {
    return `${this.linkPrefix}p${index}`;
  }

  private bridge(index: number): string {
    return `${this.linkPrefix}br${index}`;
  }

  private build(): void {
    ip(['netns', 'add', this.switchNs]);
    ip(['-n', this.switchNs, 'link', 'set', 'lo', 'up']);
    this.ensureBridges(1);
    for (let i = 0; i < this.hostCount; i++) {
      const ns = this.hostNs(i);
      ip(['netns', 'add', ns]);
      ip(['link', 'add', this.device, 'netns', ns, ...this.mtuArgs, 'type', 'veth', 'peer', 'name', this.port(i), 'netns', this.switchNs, ...this.mtuArgs]);
      ip(['-n', ns, 'link', 'set', 'lo', 'up']);
      ip(['-n', ns, 'addr', 'add', `${this.address(i)}/24`, 'dev', this.device]);
      ip(['-n', ns, 'link', 'set', this.device, 'up']);
      ip(['-n', this.switchNs, 'link', 'set', this.port(i), 'master', this.bridge(0), 'up']);
    }
  }

  private ensureBridges(count: number): void {
    while (this.bridgeCount < count) {
      const bridge = this.bridge(this.bridgeCount);
      ip(['-n', this.switchNs, 'link', 'add', bridge, ...this.mtuArgs, 'type', 'bridge']);
      ip(['-n', this.switchNs, 'link', 'set', bridge, 'up']);
      this.bridgeCount += 1;
    }
  }

  /** Each inner array is one component: hosts in different components cannot reach each other. */
  partition(components: number[][]): void {
    this.ensureBridges(components.length);
    components.forEach((hosts, bridge) => {
      for (const host of hosts) ip(['-n', this.switchNs, 'link', 'set', this.port(host), 'master', this.bridge(bridge)]);
    });
  }

  /** Cuts one host off entirely (its link goes down). */
  isolate(host: number): void {
    ip(['-n', this.switchNs, 'link', 'set', this.port(host), 'down']);
  }

  heal(): void {
    for (let i = 0; i < this.hostCount; i++) {
      ip(['-n', this.switchNs, 'link', 'set', this.port(i), 'master', this.bridge(0), 'up']);
    }
  }

  /** Spawns a process inside host `index`'s namespace. */
  spawn(index: number, command: string, args: string[], options: SpawnOptions = {}): ChildProcess {
    return spawn(IP, ['netns', 'exec', this.hostNs(index), command, ...args], options);
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (let i = 0; i < this.hostCount; i++) {
      try {
        ip(['netns', 'del', this.hostNs(i)]);
      } catch {
        // already gone
      }
    }
    try {
      ip(['netns', 'del', this.switchNs]);
    } catch {
      // already gone
    }
  }
}
