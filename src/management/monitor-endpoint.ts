/**
 * The daemon's monitor endpoint: the I/O around the pure `respondToMonitor`. The daemon's
 * UDP link hands it every datagram on segment port P that `isMonitorDatagram` accepts;
 * it sends status replies from an ephemeral port on the daemon's address (as Spread does)
 * and calls back for partition, flow control and reload. A partition lapses
 * PARTITION_LIFETIME_MS after its last packet: the endpoint then reports an all-zero one.
 *
 *   const monitor = new MonitorEndpoint({ config: () => config, snapshot: () => node.statusSnapshot(Date.now()),
 *     me, onPartition, onFlowControl, onReload, logger });
 *   link.onMonitorDatagram((bytes, from) => monitor.handle(bytes, from));
 *   ...
 *   monitor.close();
 */
import dgram from 'node:dgram';
import { isIPv6 } from 'node:net';
import type { DaemonSpec, SpreadConfig } from '../config/types.js';
import type { DaemonStatusSnapshot } from '../daemon/status-types.js';
import { PARTITION_LIFETIME_MS, respondToMonitor, type MonitorOutcome } from './monitor-protocol.js';

type Outcome<K extends MonitorOutcome['kind']> = Extract<MonitorOutcome, { kind: K }>;

export interface MonitorEndpointOptions {
  /** The daemon's current configuration (a function: it changes on reload). */
  config: () => SpreadConfig;
  snapshot: () => DaemonStatusSnapshot;
  /** This daemon's configuration entry: VID and the address replies are sent from. */
  me: Pick<DaemonSpec, 'vid' | 'address'>;
  /** Partition to apply; all zeros (also sent when a partition lapses) clears it. `terminate`: exit. */
  onPartition?: (partition: Outcome<'partition'>) => void;
  onFlowControl?: (settings: Outcome<'flowControl'>) => void;
  onReload?: () => void;
  logger?: { debug(fields: object, message: string): void; info(fields: object, message: string): void };
  /** For tests. */
  partitionLifetimeMs?: number;
}

export class MonitorEndpoint {
  readonly counters = { accepted: 0, ignored: 0, statusReplies: 0 };
  #replySocket: dgram.Socket | null = null;
  #partitionTimer: NodeJS.Timeout | null = null;
  #closed = false;

  constructor(private readonly options: MonitorEndpointOptions) {}

  /** Handles one monitor datagram; returns what was decided (for logs and tests). */
  handle(bytes: Uint8Array, from: { address: string; port?: number }): MonitorOutcome {
    const outcome = respondToMonitor(bytes, from, this.options.config(), this.options.snapshot, { vid: this.options.me.vid });
    if (outcome.kind === 'ignored') {
      this.counters.ignored++;
      this.options.logger?.debug({ from: from.address, reason: outcome.reason }, 'monitor packet ignored');
      return outcome;
    }
    this.counters.accepted++;
    switch (outcome.kind) {
      case 'status':
        this.#sendReply(outcome.reply, outcome.to.address, outcome.to.port);
        break;
      case 'partition':
        this.options.logger?.info({ from: from.address, components: outcome.components }, 'monitor partition');
        this.#armPartitionLapse(outcome);
        this.options.onPartition?.(outcome);
        break;
      case 'flowControl':
        this.options.logger?.info({ from: from.address, ...outcome }, 'monitor flow control');
        this.options.onFlowControl?.(outcome);
        break;
      case 'reload':
        this.options.logger?.info({ from: from.address }, 'monitor reload');
        this.options.onReload?.();
        break;
    }
    return outcome;
  }

  #armPartitionLapse(partition: Outcome<'partition'>): void {
    if (this.#partitionTimer) clearTimeout(this.#partitionTimer);
    this.#partitionTimer = null;
    if (partition.terminate || partition.components.every((component) => component === 0)) return;
    this.#partitionTimer = setTimeout(() => {
      this.#partitionTimer = null;
      const components = partition.components.map(() => 0);
      this.options.logger?.info({}, 'monitor partition lapsed');
      this.options.onPartition?.({ kind: 'partition', components, myComponent: 0, terminate: false });
    }, this.options.partitionLifetimeMs ?? PARTITION_LIFETIME_MS);
    this.#partitionTimer.unref();
  }

  #sendReply(reply: Uint8Array, address: string, port: number): void {
    if (this.#closed) return;
    if (!this.#replySocket) {
      const socket = dgram.createSocket(isIPv6(this.options.me.address.replace(/%.*$/, '')) ? 'udp6' : 'udp4');
      socket.on('error', () => undefined);
      socket.bind(0, this.options.me.address);
      socket.unref();
      this.#replySocket = socket;
    }
    this.counters.statusReplies++;
    this.#replySocket.send(reply, port, address);
  }

  close(): void {
    this.#closed = true;
    if (this.#partitionTimer) clearTimeout(this.#partitionTimer);
    this.#replySocket?.close();
    this.#replySocket = null;
  }
}

export { RateMeter } from '../daemon/rate-meter.js';
