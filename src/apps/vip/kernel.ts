/**
 * The host side of an address move: `ip addr add/del` (argument vectors, never a shell
 * string), reading back what the kernel holds, gratuitous ARP with `arping`, and the
 * up/down hooks.
 */
import { execFile } from 'node:child_process';
import type { DeviceAddress } from './config.js';

export interface KernelCommands {
  /** The `ip` program (iproute2). */
  ip: string;
  /** The `arping` program (iputils-arping); null disables ARP announcements. */
  arping: string | null;
}

export const DEFAULT_COMMANDS: KernelCommands = { ip: 'ip', arping: 'arping' };

/** How many announcements each move sends (arping's default interval: 1 s). */
const ANNOUNCEMENTS = 3;

function run(file: string, args: string[], timeoutMs = 5000, signal?: AbortSignal): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: timeoutMs, encoding: 'utf8', signal }, (error, stdout, stderr) => {
      if (error === null) resolve(stdout);
      else reject(new Error(`${file} ${args.join(' ')}: ${stderr.trim() || error.message}`));
    });
  });
}

/** An IPv4 address the kernel has configured, with its device. */
export interface KernelAddress {
  device: string;
  address: string;
  prefix: number;
}

interface IpJsonLink {
  ifname: string;
  addr_info?: { family: string; local: string; prefixlen: number }[];
}

export async function kernelAddresses(commands: KernelCommands): Promise<KernelAddress[]> {
  const links = JSON.parse(await run(commands.ip, ['-j', '-4', 'addr', 'show'])) as IpJsonLink[];
  return links.flatMap((link) =>
    (link.addr_info ?? []).filter((info) => info.family === 'inet').map((info) => ({ device: link.ifname, address: info.local, prefix: info.prefixlen })),
  );
}

/** The names of this host's network devices. */
export async function deviceNames(commands: KernelCommands): Promise<string[]> {
  const links = JSON.parse(await run(commands.ip, ['-j', 'link', 'show'])) as { ifname: string }[];
  return links.map((link) => link.ifname);
}

export function formatDeviceAddress(entry: DeviceAddress): string {
  return `${entry.device}:${entry.address}/${entry.prefix}`;
}

export async function addAddress(commands: KernelCommands, entry: DeviceAddress): Promise<void> {
  await run(commands.ip, ['addr', 'add', `${entry.address}/${entry.prefix}`, 'dev', entry.device]);
}

export async function deleteAddress(commands: KernelCommands, entry: DeviceAddress): Promise<void> {
  await run(commands.ip, ['addr', 'del', `${entry.address}/${entry.prefix}`, 'dev', entry.device]);
}

/** Neighbours this host has an ARP entry for on `device` (the `arp-cache` notify target). */
export async function arpNeighbours(commands: KernelCommands, device: string): Promise<string[]> {
  const entries = JSON.parse(await run(commands.ip, ['-j', '-4', 'neigh', 'show', 'dev', device])) as { dst: string; state?: string[] }[];
  return entries.filter((entry) => !(entry.state ?? []).includes('FAILED')).map((entry) => entry.dst);
}

/**
 * Announces `entry` on its segment (unsolicited ARP, which updates every neighbour that
 * caches the address) and to each target (an ARP request from the address, which makes
 * the target learn it). Repeated because Linux ignores a second update of one entry
 * within a second (locktime). Resolves when every arping has finished; `signal` stops
 * them (the address moved on: a stale announcement would pull traffic back).
 */
export async function announce(commands: KernelCommands, entry: DeviceAddress, targets: string[], signal?: AbortSignal): Promise<void> {
  if (commands.arping === null) return;
  const count = String(ANNOUNCEMENTS);
  const quiet = (error: Error) => {
    if (signal?.aborted !== true) throw error;
    return '';
  };
  const runs = [run(commands.arping, ['-q', '-U', '-c', count, '-I', entry.device, entry.address], 10_000, signal).catch(quiet)];
  for (const target of targets) runs.push(run(commands.arping, ['-q', '-c', count, '-I', entry.device, '-s', entry.address, target], 10_000, signal).catch(() => ''));
  await Promise.all(runs);
}

/** Runs an up/down hook with the address and its device as arguments. */
export async function runHook(script: string, entry: DeviceAddress): Promise<void> {
  await run(script, [entry.address, entry.device], 30_000);
}
