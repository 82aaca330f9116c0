/**
 * The address guard: a small child process of `tspread vip` that removes the addresses
 * its parent holds when the parent dies without releasing them (kill -9, a crash). The
 * parent writes `+dev address/prefix` and `-dev address/prefix` lines as it acquires and
 * releases, and `exit` when it shut down cleanly; end of input without `exit` means the
 * parent is gone, and the guard deletes what is left. Without it a killed instance would
 * keep its addresses while the group hands them to another host.
 *
 *   node guard.js <ip program>
 */
import { execFileSync, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export interface AddressGuard {
  add(device: string, cidr: string): void;
  remove(device: string, cidr: string): void;
  /** The parent released everything itself: the guard exits without deleting. */
  dismiss(): void;
}

/** Starts the guard (its own process group, so a Ctrl-C to the parent's group does not end it first). */
export function startAddressGuard(ipCommand: string): AddressGuard {
  const script = fileURLToPath(import.meta.url);
  const child = spawn(process.execPath, [script, ipCommand], { stdio: ['pipe', 'ignore', 'inherit'], detached: true });
  child.unref();
  (child.stdin as unknown as { unref?: () => void }).unref?.();
  child.stdin!.on('error', () => undefined);
  const send = (line: string) => {
    if (!child.stdin!.destroyed) child.stdin!.write(`${line}\n`);
  };
  return {
    add: (device, cidr) => send(`+${device} ${cidr}`),
    remove: (device, cidr) => send(`-${device} ${cidr}`),
    dismiss: () => {
      send('exit');
      child.stdin!.end();
    },
  };
}

function guardMain(ipCommand: string): void {
  const held = new Map<string, [device: string, cidr: string]>();
  let dismissed = false;
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => undefined);
  const lines = createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    if (line === 'exit') dismissed = true;
    const [device, cidr] = line.slice(1).split(' ');
    if (line.startsWith('+')) held.set(`${device} ${cidr}`, [device, cidr]);
    if (line.startsWith('-')) held.delete(`${device} ${cidr}`);
  });
  lines.on('close', () => {
    if (dismissed) process.exit(0);
    for (const [device, cidr] of held.values()) {
      try {
        execFileSync(ipCommand, ['addr', 'del', cidr, 'dev', device], { stdio: 'ignore' });
        process.stderr.write(`tspread vip guard: removed ${cidr} from ${device} (the vip process ended without releasing it)\n`);
      } catch {
        // already gone
      }
    }
    process.exit(0);
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) guardMain(process.argv[2] ?? 'ip');
