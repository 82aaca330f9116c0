/**
 * serve(): one replica of a service, on the public client API only. The service
 * group is a ReplicatedGroup (AGREED order, state transfer to joiners); its
 * operations drive a ServiceCore; replies go to each caller's private group.
 *
 * Proactive recovery (retire()): announce the hand-over in the total order,
 * bring in a replacement, wait until it holds the state and this replica's
 * last updates are committed, then leave — clients never lose their replica.
 */
import { EventEmitter } from 'node:events';
import type { Session } from '../../client/index.js';
import { errorText, silentLogger, type Logger } from '../shared/logger.js';
import { ReplicatedGroup } from '../shared/replicated-group.js';
import { sharedConnector } from '../shared/shared-connector.js';
import { HealthMonitor, type HealthThresholds } from './health.js';
import { decodeOperation, encode, type Operation, type Outcome, type Style } from './protocol.js';
import { ServiceCore, type Handlers } from './service-core.js';

export interface ServeOptions<S> {
  /** The service state before any request; a JSON value (it travels in snapshots and updates). */
  initialState: S;
  /** How to open a daemon session (again after each loss). */
  connect: () => Promise<Session>;
  style?: Style;
  logger?: Logger;
  /** Retire on its own past these thresholds (checked every `healthIntervalMs`, from `healthGraceMs` after the first sync). */
  health?: HealthThresholds;
  healthIntervalMs?: number;
  healthGraceMs?: number;
  /** Brings in a fresh replica when this one retires (e.g. starts a new process). */
  replace?: () => void | Promise<void>;
  /** How long a retiring replica waits for its replacement before leaving anyway (if it is not alone). */
  replaceTimeoutMs?: number;
  replyCacheEntries?: number;
}

export interface ServiceReplicaEvents {
  /** This replica holds the group's state (after a transfer, or at once when alone). */
  synced: [];
  /** retire() finished: the replica left the group. */
  retired: [];
}

export class ServiceReplica<S> extends EventEmitter<ServiceReplicaEvents> {
  readonly group: ReplicatedGroup;
  readonly core: ServiceCore<S>;
  readonly #log: Logger;
  readonly #options: ServeOptions<S>;
  #monitor: HealthMonitor | null = null;
  #announced = false;
  #retiring = false;

  constructor(group: string, handlers: Handlers<S>, options: ServeOptions<S>) {
    super();
    this.#options = options;
    this.#log = options.logger ?? silentLogger;
    const effects = {
      me: () => this.group.me,
      // Not between a view and its transfer decision either: after a merge both sides' replicas would act on their own state.
      inSync: () => this.group.transfer.synced && this.group.transfer.decided && !this.group.transfer.receiving,
      reply: (to: string, sequence: number, outcome: Outcome) => this.#reply(to, sequence, outcome),
      multicast: (operation: Operation) => this.#propose(operation),
    };
    this.core = new ServiceCore(handlers, options.initialState, options.style ?? 'active', effects, options.replyCacheEntries);
    const replica = {
      apply: (bytes: Uint8Array) => {
        const operation = decodeOperation(bytes);
        if (operation === null) this.#log.warn({ group }, 'ignored a message that is not a service operation');
        else this.core.onOperation(operation);
      },
      snapshot: () => this.core.snapshot(),
      restore: (snapshot: Buffer) => this.core.restore(snapshot),
      authoritative: () => this.core.inPrimaryView,
    };
    // SAFE: a replica acknowledges a call only once every daemon of its view has it, so the call survives a partition there.
    this.group = new ReplicatedGroup({ group, replica, connect: sharedConnector(options.connect), logger: this.#log, operationService: 'safe' });
    this.group.on('view', (members, cause) => this.core.onView(members, cause));
    this.group.on('transitional', () => this.core.onTransitional());
    this.group.on('disconnected', () => {
      this.#announced = false;
      this.core.onDisconnect();
    });
    this.group.on('synced', () => this.#onSynced());
  }

  get retiring(): boolean {
    return this.#retiring;
  }

  /**
   * Hands over and leaves: resolves once out of the group (true), or false when
   * no other replica came to take over (this one then keeps serving).
   */
  async retire(reason: string): Promise<boolean> {
    if (this.#retiring) return false;
    const me = this.group.me;
    if (me === null) return false;
    this.#retiring = true;
    this.#monitor?.stop();
    const before = new Set(this.group.members);
    let replaced = false;
    const onReady = (member: string) => (replaced ||= !before.has(member));
    this.core.on('ready', onReady);
    this.#log.warn({ group: this.group.group, member: me, reason }, 'retiring: handing over to a fresh replica');
    this.#propose({ k: 'x', member: me });
    try {
      await this.#options.replace?.();
    } catch (error) {
      this.#log.error({ error: errorText(error) }, 'could not start a replacement');
    }
    await until(() => replaced, this.#options.replaceTimeoutMs ?? 30_000);
    this.core.off('ready', onReady);
    if (this.group.members.filter((member) => member !== me).length === 0) {
      this.#log.error({ group: this.group.group }, 'no replica to hand over to; still serving');
      this.#retiring = false;
      return false;
    }
    // Updates this replica sent as primary are awaited by the next one: let them be delivered first.
    await until(() => this.core.barrierSize === 0, 10_000);
    await this.group.stop();
    this.#log.info({ group: this.group.group, executions: this.core.executions }, 'retired');
    this.emit('retired');
    return true;
  }

  async stop(): Promise<void> {
    this.#monitor?.stop();
    await this.group.stop();
  }

  #onSynced(): void {
    this.core.releaseWithheld();
    this.core.drive();
    if (this.#announced || this.group.me === null) return;
    this.#announced = true;
    this.#propose({ k: 'y', member: this.group.me });
    this.emit('synced');
    const { health } = this.#options;
    if (health === undefined || this.#monitor !== null) return;
    this.#monitor = new HealthMonitor(health, this.#options.healthIntervalMs);
    this.#monitor.once('unhealthy', (reason) => void this.retire(reason));
    setTimeout(() => {
      if (!this.#retiring) this.#monitor?.start();
    }, this.#options.healthGraceMs ?? 5000).unref();
  }

  #propose(operation: Operation): void {
    if (!this.group.propose(encode(operation))) this.#log.warn({ group: this.group.group, kind: operation.k }, 'no session: operation not sent');
  }

  #reply(to: string, sequence: number, outcome: Outcome): void {
    const session = this.group.session;
    const me = this.group.me;
    if (session === null || me === null) return;
    try {
      session.multicast(to, encode({ n: sequence, from: me, replicas: this.group.members.length, style: this.core.style, r: outcome }), { service: 'fifo' });
    } catch (error) {
      this.#log.warn({ to, error: errorText(error) }, 'could not send a reply');
    }
  }
}

/** Starts a replica of the service `group`, running `handlers` on every replica. */
export function serve<S>(group: string, handlers: Handlers<S>, options: ServeOptions<S>): ServiceReplica<S> {
  return new ServiceReplica(group, handlers, options);
}

/** Resolves when `predicate` holds or after `timeoutMs`, checking every few milliseconds. */
async function until(predicate: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
}
