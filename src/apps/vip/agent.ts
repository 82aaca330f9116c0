/**
 * One `tspread vip` instance: a session in the vip group (public client API only, so a
 * Spread 5.0.1 daemon serves as well), the replicated group state, and the work that makes
 * this host's kernel match what the assignment gives this member (host-addresses.ts).
 *
 * Ordering that keeps one holder per address inside a component: a member acquires an
 * interface only when the assignment names it and no other member is recorded as holding
 * it; a holder the assignment no longer names deletes the address first and only then
 * announces `released`. Departed members hold nothing from the view that drops them on;
 * one that disconnected (its process died, its daemon lives) gets a short grace so its
 * address guard can remove what it held.
 */
import { EventEmitter, once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect, type DataMessage, type MembershipMessage, type Session } from '../../client/index.js';
import type { VipConfig, VirtualInterface } from './config.js';
import { encodeVipMessage, decodeVipMessage, VipGroupState, type VipMessage, type ViewChange } from './group-state.js';
import { startAddressGuard, type AddressGuard } from './guard.js';
import { HostAddresses } from './host-addresses.js';
import { DEFAULT_COMMANDS, formatDeviceAddress, type KernelCommands } from './kernel.js';
import { VipMetrics } from './metrics.js';

export interface VipLogger {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

export interface VipAgentOptions {
  config: VipConfig;
  /** Directory of the daemon's Unix socket (default /tmp, like the C library). */
  socketDir?: string;
  commands?: KernelCommands;
  logger?: VipLogger;
  /** Wait this long before taking over from a member that disconnected (default 250 ms). */
  disconnectGraceMs?: number;
  /** Start the address guard (default true). */
  guard?: boolean;
}

/** What `--status` shows: the group's view of who holds what, and this host's kernel. */
export interface VipStatus {
  me: string | null;
  view: string | null;
  synced: boolean;
  members: { name: string; mature: boolean; holds: string[]; prefers: string[]; refuses: string[] }[];
  assignment: Record<string, string | null>;
  local: { vif: string; addresses: string[]; held: boolean }[];
  errors: string[];
}

const SILENT: VipLogger = { info: () => undefined, warn: () => undefined, error: () => undefined };
const RECENT_ERRORS_MAX = 20;

export class VipAgent extends EventEmitter<{ changed: [] }> {
  readonly config: VipConfig;
  readonly metrics = new VipMetrics();
  private readonly commands: KernelCommands;
  private readonly log: VipLogger;
  private readonly graceMs: number;
  private readonly socketDir: string | undefined;
  private readonly interfaces: Map<string, VirtualInterface>;
  private readonly guard: AddressGuard | null;
  private readonly host: HostAddresses;
  private state: VipGroupState;
  private session: Session | null = null;
  private me: string | null = null;
  private mature = false;
  private stopping = false;
  private readonly prefers: Set<string>;
  private readonly refuses = new Set<string>();
  /** Interfaces this host should hold / does hold in the kernel. */
  private readonly desired = new Set<string>();
  private readonly actual = new Set<string>();
  private readonly working = new Set<string>();
  /** Local time before which an interface of a disconnected member is not taken. */
  private readonly graceUntil = new Map<string, number>();
  /** When an interface of a departed member became free (for the take-over metric). */
  private readonly freedAt = new Map<string, number>();
  private readonly recentErrors: string[] = [];
  private timers: NodeJS.Timeout[] = [];
  private loop: Promise<void> | null = null;

  constructor(options: VipAgentOptions) {
    super();
    this.config = options.config;
    this.commands = options.commands ?? DEFAULT_COMMANDS;
    this.log = options.logger ?? SILENT;
    this.graceMs = options.disconnectGraceMs ?? 250;
    this.interfaces = new Map(this.config.interfaces.map((vif) => [vif.id, vif]));
    this.prefers = new Set(this.config.prefer);
    this.state = this.freshState();
    this.guard = options.guard === false ? null : startAddressGuard(this.commands.ip);
    this.host = new HostAddresses(
      this.config,
      this.commands,
      this.guard,
      (kind, message) => this.fail(kind, message),
      (fields, message) => this.log.warn(fields, message),
    );
    this.socketDir = options.socketDir;
  }

  private freshState(): VipGroupState {
    return new VipGroupState(
      this.config.interfaces.map((vif) => vif.id),
      this.config.quorum,
      this.config.acquisitionsPerRound,
    );
  }

  /** Connects (and reconnects after losing the daemon) until stop(). */
  start(): void {
    this.loop ??= this.connectLoop();
  }

  private async connectLoop(): Promise<void> {
    await this.host.removeLeftovers();
    for (const [id, refusal] of await this.host.preflight()) {
      this.refuses.add(id);
      this.fail(refusal.kind, `${id}: ${refusal.message}`);
    }
    while (!this.stopping) {
      let session: Session;
      try {
        session = await connect({ daemon: this.config.spread, privateName: this.config.name ?? 'vip', unixSocketDir: this.socketDir, timeoutMs: 5000 });
      } catch (error) {
        this.log.warn({ err: (error as Error).message, retryMs: this.config.spreadRetryMs }, 'cannot reach the Spread daemon');
        await sleep(this.config.spreadRetryMs);
        continue;
      }
      if (this.stopping) {
        await session.disconnect();
        break;
      }
      this.attach(session);
      const why = await session.closed();
      this.detach();
      if (this.stopping) break;
      this.log.warn({ err: why instanceof Error ? why.message : 'closed' }, 'lost the Spread daemon: releasing every address');
      await this.releaseEverythingLocally();
      await sleep(this.config.spreadRetryMs);
    }
  }

  private attach(session: Session): void {
    this.session = session;
    this.me = session.privateGroup;
    this.state = this.freshState();
    this.mature = this.config.matureMs === 0;
    session.on('membership', (message) => this.onMembership(message));
    session.on('message', (message) => this.onData(message));
    session.join(this.config.group);
    this.log.info({ me: this.me, group: this.config.group }, 'joined');
    if (!this.mature) {
      this.timers.push(
        setTimeout(() => {
          this.mature = true;
          this.send({ type: 'mature' });
          this.log.info({}, 'mature');
        }, this.config.matureMs),
      );
    }
    this.timers.push(setInterval(() => this.balanceTick(), this.config.balanceIntervalMs));
  }

  private detach(): void {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers = [];
    this.session = null;
    this.me = null;
    this.state = this.freshState();
    this.emit('changed');
  }

  private send(message: VipMessage): void {
    const session = this.session;
    if (session === null || session.isClosed) return;
    try {
      session.multicast(this.config.group, encodeVipMessage(message), { service: 'agreed' });
    } catch (error) {
      this.log.warn({ err: (error as Error).message }, 'multicast failed');
    }
  }

  /** The first member by name asks for a balance round, through the total order. */
  private balanceTick(): void {
    if (!this.state.synced) return;
    const first = this.state.members.map((m) => m.name).sort()[0];
    if (first === this.me) this.send({ type: 'balance' });
  }

  private onMembership(message: MembershipMessage): void {
    if (message.group !== this.config.group || message.transitional || message.cause === 'self-leave') return;
    const cameWithUs =
      message.cause === 'network' ? message.mySet : message.cause === 'join' ? message.members.filter((m) => m !== message.changedMember) : message.members;
    const view: ViewChange = { key: `${message.gid.procId}.${message.gid.time}.${message.gid.index}`, members: message.members, cameWithUs };
    const outcome = this.state.onView(view);
    const now = Date.now();
    for (const { held } of outcome.departed) {
      for (const vif of held) {
        this.freedAt.set(vif, now);
        if (message.cause === 'disconnect') this.graceUntil.set(vif, now + this.graceMs);
      }
    }
    if (outcome.departed.length > 0) this.log.info({ departed: outcome.departed, cause: message.cause }, 'members departed');
    if (outcome.exchange) {
      const holds = this.config.interfaces.map((vif) => vif.id).filter((id) => this.actual.has(id) || this.desired.has(id));
      this.send({
        type: 'state',
        view: view.key,
        mature: this.mature,
        prefers: [...this.prefers],
        refuses: [...this.refuses],
        holds,
        interfaces: this.config.interfaces.map((vif) => vif.id),
      });
    }
    this.reconcile();
  }

  private onData(message: DataMessage): void {
    if (!message.groups.includes(this.config.group)) return;
    const decoded = decodeVipMessage(message.data);
    if (decoded === null) return;
    if (decoded.type === 'released' && message.sender !== this.me) this.freedAt.set(decoded.vif, Date.now());
    const wasSynced = this.state.synced;
    this.state.onMessage(message.sender, decoded);
    if (!wasSynced && this.state.synced && this.state.mismatched.size > 0) {
      this.fail('config', `members ${[...this.state.mismatched].join(', ')} list other virtual interfaces: every host needs the same VirtualInterfaces`);
    }
    this.reconcile();
  }

  /** Makes `desired` follow the assignment, and starts the kernel work that follows `desired`. */
  private reconcile(): void {
    this.emit('changed');
    if (!this.state.synced || this.me === null || this.stopping) return;
    const assignment = this.state.assignment();
    for (const [vif, holder] of assignment) {
      const heldByOther = this.state.members.some((m) => m.name !== this.me && m.holds.includes(vif));
      // A refusal is in flight until the group has it: do not try again meanwhile.
      if (holder === this.me && !heldByOther && !this.refuses.has(vif)) this.desired.add(vif);
      else if (holder !== this.me) this.desired.delete(vif);
      this.work(vif);
    }
  }

  /** Runs the acquire/release steps of one interface until the kernel matches `desired`. */
  private work(vif: string): void {
    if (this.working.has(vif)) return;
    this.working.add(vif);
    void (async () => {
      try {
        for (;;) {
          const want = this.desired.has(vif);
          if (want === this.actual.has(vif)) break;
          if (want) {
            const wait = (this.graceUntil.get(vif) ?? 0) - Date.now();
            if (wait > 0) {
              await sleep(wait);
              continue;
            }
            await this.acquire(vif);
          } else await this.release(vif);
        }
      } finally {
        this.working.delete(vif);
        this.emit('changed');
      }
    })();
  }

  private async acquire(id: string): Promise<void> {
    const vif = this.interfaces.get(id)!;
    const refusal = await this.host.acquire(vif);
    if (refusal !== null) return this.refuse(id, refusal.kind, refusal.message);
    this.actual.add(id);
    this.send({ type: 'acquired', vif: id });
    this.metrics.acquisitions.inc();
    this.metrics.held.set(this.actual.size);
    const freed = this.freedAt.get(id);
    this.freedAt.delete(id);
    this.graceUntil.delete(id);
    if (freed !== undefined) {
      this.metrics.takeovers.inc();
      this.metrics.takeoverSeconds.observe((Date.now() - freed) / 1000);
    }
    this.log.info({ vif: id, addresses: vif.addresses.map(formatDeviceAddress), takeoverMs: freed === undefined ? null : Date.now() - freed }, 'acquired');
    void this.host.announceAndHook(vif);
  }

  /** Deletes first, then tells the group: release before anyone else acquires. */
  private async release(id: string): Promise<void> {
    await this.host.release(this.interfaces.get(id)!);
    this.actual.delete(id);
    this.send({ type: 'released', vif: id });
    this.metrics.releases.inc();
    this.metrics.held.set(this.actual.size);
    this.log.info({ vif: id }, 'released');
  }

  /** This host cannot hold `id`: say why, and tell the group so another member takes it. */
  private refuse(id: string, kind: string, message: string): void {
    this.fail(kind, `${id}: ${message}`);
    this.refuses.add(id);
    this.desired.delete(id);
    this.send({ type: 'prefs', prefers: [...this.prefers], refuses: [...this.refuses] });
  }

  private fail(kind: string, message: string): void {
    this.metrics.errors.inc({ kind });
    this.recentErrors.push(`${new Date().toISOString()} ${message}`);
    if (this.recentErrors.length > RECENT_ERRORS_MAX) this.recentErrors.shift();
    this.log.error({ kind }, message);
  }

  /** Deletes every address this host holds; resolves once the kernel work has finished. */
  private async releaseEverythingLocally(): Promise<void> {
    this.desired.clear();
    for (const id of this.interfaces.keys()) this.work(id);
    while (this.working.size > 0) await once(this, 'changed');
  }

  /** The interface holding `address`, or an error naming it. */
  private interfaceOf(address: string): string {
    const vif = this.config.interfaces.find((v) => v.id === address || v.addresses.some((a) => a.address === address));
    if (vif === undefined) throw new Error(`${address} is no virtual address of this cluster`);
    return vif.id;
  }

  /** By hand: this host gives `address` up (and will not be given it until preferAddress). */
  releaseAddress(address: string): void {
    const id = this.interfaceOf(address);
    this.refuses.add(id);
    this.prefers.delete(id);
    this.send({ type: 'prefs', prefers: [...this.prefers], refuses: [...this.refuses] });
  }

  /** By hand: this host prefers `address`; the group moves it here at once if it can. */
  preferAddress(address: string): void {
    const id = this.interfaceOf(address);
    this.refuses.delete(id);
    this.prefers.add(id);
    this.send({ type: 'prefs', prefers: [...this.prefers], refuses: [...this.refuses] });
  }

  status(): VipStatus {
    return {
      me: this.me,
      view: this.state.view,
      synced: this.state.synced,
      members: this.state.members.map((m) => ({ name: m.name, mature: m.mature, holds: [...m.holds], prefers: [...m.prefers], refuses: [...m.refuses] })),
      assignment: Object.fromEntries(this.state.assignment()),
      local: this.config.interfaces.map((vif) => ({
        vif: vif.id,
        addresses: vif.addresses.map(formatDeviceAddress),
        held: this.actual.has(vif.id),
      })),
      errors: [...this.recentErrors],
    };
  }

  /** Releases every address, leaves the group (others take over at once) and disconnects. */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const timer of this.timers) clearTimeout(timer);
    await this.releaseEverythingLocally();
    const session = this.session;
    if (session !== null && !session.isClosed) {
      session.leave(this.config.group);
      await session.disconnect();
    }
    this.guard?.dismiss();
    await this.loop;
  }
}
