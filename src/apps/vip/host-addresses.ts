/**
 * This host's side of the virtual interfaces: configure and delete their addresses, check
 * the kernel after each action, keep the address guard informed, announce with ARP and run
 * the hooks. Knows nothing of the group; the agent decides what to hold.
 */
import type { VipConfig, VirtualInterface } from './config.js';
import type { AddressGuard } from './guard.js';
import {
  addAddress,
  announce,
  arpNeighbours,
  deleteAddress,
  deviceNames,
  formatDeviceAddress,
  kernelAddresses,
  runHook,
  type KernelAddress,
  type KernelCommands,
} from './kernel.js';

/** Why this host cannot hold an interface. */
export interface Refusal {
  kind: 'ip' | 'in-use';
  message: string;
}

/** Reports a problem that does not stop the work (a hook failed, the kernel disagrees). */
export type ReportProblem = (kind: string, message: string) => void;
export type ReportNote = (fields: object, message: string) => void;

function configured(present: KernelAddress[], entry: { address: string; device: string }): boolean {
  return present.some((k) => k.address === entry.address && k.device === entry.device);
}

/** A refusal when an address of `vif` is already configured here (by someone else: ours are not yet). */
function inUse(vif: VirtualInterface, present: KernelAddress[]): Refusal | null {
  const taken = vif.addresses.filter((entry) => present.some((k) => k.address === entry.address));
  if (taken.length === 0) return null;
  const where = taken.map((entry) => `${entry.address} on ${present.find((k) => k.address === entry.address)!.device}`).join(', ');
  return { kind: 'in-use', message: `${where}: already configured on this host by someone else; leaving it alone` };
}

export class HostAddresses {
  /** Running announcements per interface, stopped when it is released. */
  private readonly announcing = new Map<string, AbortController>();

  constructor(
    private readonly config: VipConfig,
    private readonly commands: KernelCommands,
    private readonly guard: AddressGuard | null,
    private readonly problem: ReportProblem,
    private readonly note: ReportNote,
  ) {}

  /**
   * Before joining: an address configured exactly as a virtual interface says (device and
   * prefix) was left by an earlier instance that died with its guard (a kill of the whole
   * cgroup); nobody in the group counts it as held, so it goes. Anything else on the host
   * is someone else's and is only reported when the address is assigned here.
   */
  async removeLeftovers(): Promise<void> {
    const present = await kernelAddresses(this.commands).catch(() => []);
    for (const entry of this.config.interfaces.flatMap((vif) => vif.addresses)) {
      if (!present.some((k) => k.address === entry.address && k.device === entry.device && k.prefix === entry.prefix)) continue;
      await deleteAddress(this.commands, entry).then(
        () => this.note({ address: formatDeviceAddress(entry) }, 'removed an address an earlier instance left configured'),
        (error: Error) => this.problem('ip', `cannot remove the leftover ${formatDeviceAddress(entry)}: ${error.message}`),
      );
    }
  }

  /**
   * The interfaces this host cannot hold as it is — a device missing, an address configured
   * by someone else — with why: refused before joining, so the group never moves them here
   * (which would leave them unheld while this host fails to add them).
   */
  async preflight(): Promise<Map<string, Refusal>> {
    const refusals = new Map<string, Refusal>();
    const [present, devices] = await Promise.all([kernelAddresses(this.commands), deviceNames(this.commands)]).catch(() => [null, null]);
    if (present === null || devices === null) return refusals; // found out at the first acquisition instead
    for (const vif of this.config.interfaces) {
      const missing = vif.addresses.find((entry) => !devices.includes(entry.device));
      const refusal = missing !== undefined ? { kind: 'ip' as const, message: `device ${missing.device} does not exist on this host` } : inUse(vif, present);
      if (refusal !== null) refusals.set(vif.id, refusal);
    }
    return refusals;
  }

  /** Configures every address of `vif`, all or none; a refusal says why not. */
  async acquire(vif: VirtualInterface): Promise<Refusal | null> {
    const present = await kernelAddresses(this.commands).catch((error: Error) => error);
    if (present instanceof Error) return { kind: 'ip', message: `cannot read this host's addresses: ${present.message}` };
    const conflict = inUse(vif, present);
    if (conflict !== null) return conflict;
    const added = [];
    for (const entry of vif.addresses) {
      try {
        await addAddress(this.commands, entry);
        added.push(entry);
        this.guard?.add(entry.device, `${entry.address}/${entry.prefix}`);
      } catch (error) {
        for (const undo of added) await this.deleteOne(undo);
        return { kind: 'ip', message: `cannot add ${formatDeviceAddress(entry)}: ${(error as Error).message}` };
      }
    }
    const after = await kernelAddresses(this.commands).catch(() => []);
    const missing = vif.addresses.filter((entry) => !configured(after, entry));
    if (missing.length === 0) return null;
    for (const undo of added) await this.deleteOne(undo);
    return { kind: 'ip', message: `added ${missing.map(formatDeviceAddress).join(', ')} but the kernel does not show it` };
  }

  /** ARP announcements and the up hook; call once the group was told (off the take-over path). */
  async announceAndHook(vif: VirtualInterface): Promise<void> {
    const stop = new AbortController();
    this.announcing.set(vif.id, stop);
    await Promise.all(
      vif.addresses.map(async (entry) => {
        const targets = this.config.notify.filter((t) => t.device === entry.device).map((t) => t.address);
        if (this.config.notifyArpCache) targets.push(...(await arpNeighbours(this.commands, entry.device).catch(() => [])));
        const announced = announce(this.commands, entry, [...new Set(targets)], stop.signal).catch((error: Error) =>
          this.note({ err: error.message }, 'arping failed'),
        );
        // The hook need not wait for the repeats (seconds): services follow at once.
        if (this.config.up !== null && !stop.signal.aborted) await runHook(this.config.up, entry).catch((error: Error) => this.problem('hook', error.message));
        await announced;
      }),
    );
    if (this.announcing.get(vif.id) === stop) this.announcing.delete(vif.id);
  }

  /** Stops the announcements, deletes every address of `vif`, checks, runs the down hook. */
  async release(vif: VirtualInterface): Promise<void> {
    this.announcing.get(vif.id)?.abort();
    this.announcing.delete(vif.id);
    for (const entry of vif.addresses) await this.deleteOne(entry);
    const after = await kernelAddresses(this.commands).catch(() => []);
    const left = vif.addresses.filter((entry) => configured(after, entry));
    if (left.length > 0) this.problem('ip', `released ${left.map(formatDeviceAddress).join(', ')} but the kernel still shows it`);
    if (this.config.down === null) return;
    for (const entry of vif.addresses) await runHook(this.config.down, entry).catch((error: Error) => this.problem('hook', error.message));
  }

  private async deleteOne(entry: VirtualInterface['addresses'][number]): Promise<void> {
    await deleteAddress(this.commands, entry).catch((error: Error) => this.note({ err: error.message }, 'ip addr del failed'));
    this.guard?.remove(entry.device, `${entry.address}/${entry.prefix}`);
  }
}
