/**
 * `tspread flooder` processes against a ring started by startRing(): counting receivers and
 * unthrottled writers on given daemons, a watcher that waits until the receivers are in the
 * group, and what the daemons logged about cut sessions. Used by the load test and benchmark.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { connect, type Session } from '../../src/client/index.js';
import { ToolProcess } from '../fake-daemon/processes.js';
import type { StartedDaemon, StartedRing } from './daemon.js';

export const FLOOD_GROUP = 'flooder';

export interface FloodOptions {
  messages: number;
  bytes: number;
  service: string;
  /** Writers each receiver waits for (receivers only). */
  senders?: number;
}

/** Client address of daemon `index`: even ones over TCP, odd ones over their Unix socket. */
function addressArgs(daemon: StartedDaemon, index: number): string[] {
  const socketDir = path.dirname(daemon.unixPath);
  return index % 2 === 0 ? ['-s', `${daemon.port}@127.0.0.${index + 1}`] : ['-s', String(daemon.port), '--socket-dir', socketDir];
}

function floodArgs(options: FloodOptions): string[] {
  return ['-m', String(options.messages), '-b', String(options.bytes), '--service', options.service, '--json'];
}

/** A `flooder -wo` writer on daemon `index` of the ring. */
export function floodWriter(ring: StartedRing, index: number, name: string, options: FloodOptions): ToolProcess {
  return new ToolProcess(['flooder', '-wo', '-u', name, ...addressArgs(ring.daemons[index], index), ...floodArgs(options)]);
}

/** Resolves once `session` sees `group` with all of `members` (private group names). */
function viewWith(session: Session, group: string, members: string[]): Promise<void> {
  return new Promise((resolve) => {
    const onMembership = (message: { group: string; members: string[] }) => {
      if (message.group === group && members.every((member) => message.members.includes(member))) {
        session.off('membership', onMembership);
        resolve();
      }
    };
    session.on('membership', onMembership);
  });
}

/**
 * `flooder -ro` receivers, receiver i on daemon i mod n; resolves once a watcher on d1 sees
 * all of them in the group (so writers started next miss nothing).
 */
export async function startFloodReceivers(ring: StartedRing, names: string[], options: FloodOptions): Promise<ToolProcess[]> {
  const daemons = ring.daemons.length;
  const watcher = await connect({ daemon: `${ring.daemons[0].port}@127.0.0.1`, privateName: `watch${Math.floor(Math.random() * 1e5)}` });
  try {
    const joined = viewWith(watcher, FLOOD_GROUP, names.map((name, index) => `#${name}#d${(index % daemons) + 1}`));
    watcher.join(FLOOD_GROUP);
    const senders = ['--senders', String(options.senders ?? 1)];
    const receivers = names.map((name, index) => {
      const daemonIndex = index % daemons;
      return new ToolProcess(['flooder', '-ro', '-u', name, ...addressArgs(ring.daemons[daemonIndex], daemonIndex), ...floodArgs(options), ...senders]);
    });
    const exited = Promise.race(receivers.map((tool) => tool.exited.then(() => tool)));
    const early = await Promise.race([joined.then(() => null), exited]);
    if (early !== null) throw new Error(`receiver exited before the writers started: ${early.stdout} ${early.stderr}`);
    return receivers;
  } finally {
    await watcher.disconnect();
  }
}

/** Every `cutting slow reader` line the ring's daemons logged so far. */
export function cutLines(ring: StartedRing): string[] {
  return ring.daemons.flatMap((daemon) => daemon.output().split('\n').filter((line) => line.includes('cutting slow reader')));
}

/** Peak resident memory of a process in KiB (Linux /proc). */
export function peakRssKb(pid: number): number {
  const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) : Number.NaN;
}
