/**
 * The monitor's side of §9: a UDP socket bound to the monitor host's configured daemon
 * address and port -p, sending STATUS / PARTITION / FLOW CONTROL / RELOAD packets to daemons
 * (segment port P at their configured address) and collecting status replies. Works with
 * tspread daemons and Spread 5.0.1 daemons alike: both check the same acceptance rules.
 */
import dgram from 'node:dgram';
import { isIPv6 } from 'node:net';
import type { DaemonSpec, SpreadConfig } from '../config/types.js';
import {
  MonitorCommand,
  decodeMonitorHeader,
  decodeStatusReply,
  encodeStatusRequest,
  type MonitorIdentity,
  type MonitorStatus,
} from './monitor-protocol.js';

export interface StatusReply {
  daemon: DaemonSpec;
  status: MonitorStatus;
  receivedAtMs: number;
  from: { address: string; port: number };
}

/** spmonitor sends partition, flow-control and reload packets twice (§9.3). */
export const COMMAND_COPIES = 2;

export class MonitorClient {
  readonly identity: MonitorIdentity;
  #socket: dgram.Socket;
  #config: SpreadConfig;
  #listeners = new Set<(reply: StatusReply) => void>();
  /** Datagrams that were not status replies from a configured daemon. */
  strayDatagrams = 0;

  private constructor(socket: dgram.Socket, config: SpreadConfig, self: DaemonSpec) {
    this.#socket = socket;
    this.#config = config;
    this.identity = { vid: self.vid, confHash: config.hash };
    socket.on('message', (bytes, remote) => this.#onDatagram(bytes, remote));
  }

  /** Binds `self.address`:`port` (spmonitor: the monitor's configured entry, port -p 6543). */
  static async open(config: SpreadConfig, self: DaemonSpec, port: number): Promise<MonitorClient> {
    const socket = dgram.createSocket({ type: isIPv6(self.address.replace(/%.*$/, '')) ? 'udp6' : 'udp4' });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(port, self.address, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    socket.on('error', () => undefined);
    return new MonitorClient(socket, config, self);
  }

  get port(): number {
    return this.#socket.address().port;
  }

  /** Switches to a reloaded configuration (new hash, daemons). */
  setConfig(config: SpreadConfig): void {
    this.#config = config;
    this.identity.confHash = config.hash;
  }

  #onDatagram(bytes: Buffer, remote: dgram.RemoteInfo): void {
    try {
      const header = decodeMonitorHeader(bytes);
      if (header.type !== MonitorCommand.STATUS) throw new Error('not a status reply');
      const { status } = decodeStatusReply(bytes);
      const daemon = this.#config.daemons.find((entry) => entry.vid >>> 0 === status.myId >>> 0);
      if (!daemon) throw new Error('reply from an unconfigured daemon');
      const reply: StatusReply = { daemon, status, receivedAtMs: Date.now(), from: { address: remote.address, port: remote.port } };
      for (const listener of this.#listeners) listener(reply);
    } catch {
      this.strayDatagrams++;
    }
  }

  onStatus(listener: (reply: StatusReply) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #portOf(daemon: DaemonSpec): number {
    return this.#config.segments[daemon.segmentIndex]?.port ?? 4803;
  }

  /** Sends `packet` `copies` times to each target's address at its segment port. */
  async send(packet: Uint8Array, targets: readonly DaemonSpec[], copies = 1): Promise<void> {
    const sends: Promise<void>[] = [];
    for (const daemon of targets) {
      for (let copy = 0; copy < copies; copy++) {
        sends.push(
          new Promise<void>((resolve) => this.#socket.send(packet, this.#portOf(daemon), daemon.address, () => resolve())),
        );
      }
    }
    await Promise.all(sends);
  }

  /** One status round: ask every target, resolve with the replies that came within `waitMs` (early when all did). */
  async statusRound(targets: readonly DaemonSpec[], waitMs: number): Promise<Map<string, StatusReply>> {
    const replies = new Map<string, StatusReply>();
    const wanted = new Set(targets.map((daemon) => daemon.name));
    let done!: () => void;
    const finished = new Promise<void>((resolve) => (done = resolve));
    const stop = this.onStatus((reply) => {
      if (!wanted.has(reply.daemon.name)) return;
      replies.set(reply.daemon.name, reply);
      if (replies.size === wanted.size) done();
    });
    const timer = setTimeout(done, waitMs);
    await this.send(encodeStatusRequest(this.identity, this.port), targets);
    if (targets.length === 0) done();
    await finished;
    clearTimeout(timer);
    stop();
    return replies;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.#socket.close(() => resolve()));
  }
}
