/**
 * The daemon's I/O adapter: client listeners (TCP on the segment port, Unix socket
 * `<dir>/<port>`, §1.2), per-session output queues, input throttling, timers. All
 * protocol decisions are DaemonNode's; this file only moves bytes and time.
 *
 * Batching: socket events only feed the node; one `drive()` per event-loop turn
 * (setImmediate) takes the node's effects; each session's deliveries of the turn go to the
 * kernel in one vectored write (session-output.ts).
 *
 * Back-pressure:
 *   - §6.4: while node.inputThrottled() (≥ 500 messages waiting for the ring) every open
 *     session's socket is paused, so senders stall through TCP.
 *   - tspread: also while some session's output is backlogged (what the kernel would not
 *     take) AND that session is still reading (the kernel took some of its bytes within the
 *     last 250 ms). So a client that keeps reading is not buried by local senders: they wait
 *     for it. A session that stops reading stops holding the others back after 250 ms, and is
 *     cut once MaxSessionMessages are queued with no progress for `slowReaderStallMs` (or at
 *     once past MaxSessionBytes), with a log line saying why.
 */
import { chmodSync, unlinkSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import type { OutboundPacket } from '../ring/types.js';
import type { PeerAddress, TlsPeer } from './access-ip.js';
import type { CloseReason, DaemonNode, NodeLogger } from './node.js';
import { SessionOutput } from './session-output.js';

/**
 * Listen backlogs. Spread uses 25 (TCP) and 5 (Unix, §1.2) because it accepts one
 * handshake at a time; a burst of Unix connects then fails with EAGAIN. tspread runs
 * handshakes concurrently and takes a deeper queue.
 */
const TCP_BACKLOG = 128;
const UNIX_BACKLOG = 128;
/** How long a rejected connection may take to read its reject byte before it is destroyed. */
const LINGER_MS = 2000;
const STALL_CHECK_INTERVAL_MS = 250;
/** A TLS client that has not finished its TLS handshake by then is dropped (Node's default is 120 s). */
const TLS_HANDSHAKE_TIMEOUT_MS = 10_000;
/**
 * Input bytes after which the effects are taken at once instead of at the end of the turn:
 * libuv reads up to 32 × 64 KiB per socket per turn, and backlog must be seen (and senders
 * paused) before that much is turned into deliveries.
 */
const DRIVE_EVERY_BYTES = 64 * 1024;
export const SLOW_READER_STALL_MS_DEFAULT = 2000;

export interface PacketTransport {
  send(packet: OutboundPacket): void;
  /** The packets sent so far form a batch: let any the transport held back leave now. */
  flush?(): void;
}

export interface DaemonServerOptions {
  node: DaemonNode;
  port: number;
  /** TCP bind addresses; empty = no TCP listener. */
  tcpHosts: string[];
  /** Unix-domain socket path, or null for none. */
  unixPath: string | null;
  /**
   * TLS client listener (docs/security.md) on `tcpHosts`-like `hosts` at `port`. `secure`: the
   * certificate, key and CA. `clientCertificates`: 'request' asks clients for one (verified
   * against the CA; its subject CN becomes the session's identity), 'require' also refuses
   * TLS sessions without one with REJECT_AUTH.
   */
  tls?: { hosts: string[]; port: number; secure: tls.SecureContextOptions; clientCertificates: 'none' | 'request' | 'require' };
  maxSessionMessages: number;
  maxSessionBytes: number;
  slowReaderStallMs?: number;
  logger: NodeLogger;
  transport?: PacketTransport;
  now?: () => number;
  /** Runs before each batch of effects (ring packets, client writes) leaves; the daemon keeps its ring identity here. */
  beforeEffects?: () => void;
}

interface Connection {
  id: number;
  socket: net.Socket;
  output: SessionOutput;
  closing: boolean;
  paused: boolean;
}

export class DaemonServer {
  private readonly options: DaemonServerOptions;
  private readonly node: DaemonNode;
  private readonly now: () => number;
  private readonly stallMs: number;
  private readonly connections = new Map<number, Connection>();
  private readonly backlogged = new Set<Connection>();
  private readonly listeners: net.Server[] = [];
  private nextId = 1;
  private scheduled = false;
  private throttled = false;
  private deadlineTimer: NodeJS.Timeout | null = null;
  private deadlineAtMs: number | null = null;
  private stallTimer: NodeJS.Timeout | null = null;
  private unixBound = false;
  private stopped = false;
  /** Sessions that got deliveries in this drive (flushed at its end). */
  private touched: Connection[] = [];
  private bytesSinceDrive = 0;

  constructor(options: DaemonServerOptions) {
    this.options = options;
    this.node = options.node;
    this.now = options.now ?? Date.now;
    this.stallMs = options.slowReaderStallMs ?? SLOW_READER_STALL_MS_DEFAULT;
  }

  async start(): Promise<void> {
    for (const host of this.options.tcpHosts) {
      const server = net.createServer((socket) => this.onConnection(socket, false));
      await listen(server, { host, port: this.options.port, backlog: TCP_BACKLOG });
      this.listeners.push(server);
    }
    const secure = this.options.tls;
    if (secure !== undefined) {
      for (const host of secure.hosts) {
        const server = tls.createServer(
          // The daemon, not the TLS layer, refuses a missing certificate: with Spread's REJECT_AUTH.
          { ...secure.secure, requestCert: secure.clientCertificates !== 'none', rejectUnauthorized: false, handshakeTimeout: TLS_HANDSHAKE_TIMEOUT_MS },
          (socket) => this.onConnection(socket, false, tlsPeerOf(socket, secure.clientCertificates === 'require')),
        );
        server.on('tlsClientError', (error) => this.options.logger.debug({ error: String(error) }, 'TLS handshake with a client failed'));
        await listen(server, { host, port: secure.port, backlog: TCP_BACKLOG });
        this.listeners.push(server);
      }
    }
    const unixPath = this.options.unixPath;
    if (unixPath !== null) {
      removeSocketFile(unixPath);
      const server = net.createServer((socket) => this.onConnection(socket, true));
      await listen(server, { path: unixPath, backlog: UNIX_BACKLOG });
      this.unixBound = true;
      chmodSync(unixPath, 0o666);
      this.listeners.push(server);
    }
    this.schedule();
  }

  /** Port of the first TLS listener (useful with port 0), or null. */
  tlsPort(): number | null {
    for (const server of this.listeners) {
      const address = server.address();
      if (server instanceof tls.Server && address !== null && typeof address === 'object') return address.port;
    }
    return null;
  }

  /** Port of the first TCP listener (useful with port 0). */
  tcpPort(): number | null {
    for (const server of this.listeners) {
      const address = server.address();
      if (address !== null && typeof address === 'object') return address.port;
    }
    return null;
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.deadlineTimer) clearTimeout(this.deadlineTimer);
    if (this.stallTimer) clearInterval(this.stallTimer);
    const closing = this.listeners.map((server) => new Promise<void>((resolve) => server.close(() => resolve())));
    for (const connection of this.connections.values()) connection.socket.destroy();
    this.connections.clear();
    await Promise.all(closing);
    if (this.unixBound && this.options.unixPath !== null) removeSocketFile(this.options.unixPath);
    this.unixBound = false;
  }

  /**
   * A datagram from another daemon (wired by the UDP adapter). `now`: act on it in this
   * turn (a token: forwarding it is what the next daemon waits for), else with the
   * turn's other input in one drive.
   */
  ringPacket(bytes: Uint8Array, now = false): void {
    this.node.ringPacket(bytes, this.now());
    if (now) this.drive();
    else this.schedule();
  }

  // ---- connections ---------------------------------------------------------------------

  private onConnection(socket: net.Socket, unix: boolean, tlsPeer?: TlsPeer): void {
    if (this.stopped) {
      socket.destroy();
      return;
    }
    const id = this.nextId++;
    if (!unix) {
      socket.setNoDelay(true);
      socket.setKeepAlive(true);
    }
    const sink = {
      writev(chunks: Uint8Array[], written: () => void): void {
        socket.cork();
        const last = chunks.length - 1;
        for (let i = 0; i < last; i++) socket.write(chunks[i]);
        socket.write(chunks[last], (error) => {
          if (!error) written();
        });
        socket.uncork();
      },
      unwrittenBytes: () => unwrittenBytes(socket),
    };
    const limits = { messagesMax: this.options.maxSessionMessages, bytesMax: this.options.maxSessionBytes, stallMs: this.stallMs };
    const connection: Connection = {
      id,
      socket,
      output: new SessionOutput(sink, limits, this.now, () => {
        if (this.backlogged.has(connection)) this.updateThrottle();
      }),
      closing: false,
      paused: false,
    };
    this.connections.set(id, connection);
    const peer: PeerAddress = unix ? { kind: 'unix' } : { kind: 'tcp', address: socket.remoteAddress ?? '', ...(tlsPeer ? { tls: tlsPeer } : {}) };
    socket.on('data', (chunk: Buffer) => {
      if (connection.closing) return;
      try {
        this.node.sessionData(id, chunk);
      } catch (error) {
        // A bug, not bad input (the node turns bad input into a kill): contain it to this session.
        this.options.logger.warn({ session: id, error: String(error) }, 'internal error on session input; closing it');
        connection.closing = true;
        socket.destroy();
        this.node.sessionEnded(id, 'error', String(error));
      }
      this.bytesSinceDrive += chunk.length;
      if (this.bytesSinceDrive >= DRIVE_EVERY_BYTES) this.drive();
      else this.schedule();
      if (this.throttled && !connection.paused && this.node.isOpen(id)) this.pause(connection);
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      this.options.logger.debug({ session: id, code: error.code }, 'session socket error');
    });
    socket.on('close', (hadError: boolean) => {
      this.connections.delete(id);
      this.backlogged.delete(connection);
      connection.closing = true;
      connection.output.discard();
      this.node.sessionEnded(id, hadError ? 'error' : 'eof');
      this.schedule();
    });
    this.node.sessionAccepted(id, peer, this.now());
    this.schedule();
  }

  // ---- the drive loop ----------------------------------------------------------------------

  private schedule(): void {
    if (this.scheduled || this.stopped) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.drive();
    });
  }

  /** Takes the node's effects and applies them; runs from the scheduled turn or directly. */
  private drive(): void {
    this.bytesSinceDrive = 0;
    if (this.stopped) return;
    const nowMs = this.now();
    // Submits of this turn may need the ring's attention now (e.g. ask a held token back).
    this.node.tick(nowMs);
    this.options.beforeEffects?.();
    // A token (any unicast) goes out before the deliveries are written: the next daemon waits
    // for it. Data alone (the leader ordering on a held token) waits for this turn's client
    // writes, so a sender's own message reaches it before the syscalls for the other daemons.
    const later: OutboundPacket[][] = [];
    const ringFirst = this.node.takePackets();
    if (carriesToken(ringFirst)) this.sendPackets(ringFirst);
    else later.push(ringFirst);
    const ready = this.node.ready();
    if (carriesToken(ready.packets)) this.sendPackets(ready.packets);
    else later.push(ready.packets);
    for (const write of ready.writes) {
      const sessions = write.sessions;
      for (let i = 0; i < sessions.length; i++) {
        const connection = this.connections.get(sessions[i]);
        if (connection === undefined || connection.closing) continue;
        const cut = connection.output.push(write.bytes);
        if (cut !== null) this.cutSlowReader(connection, cut);
        else this.touched.push(connection);
      }
    }
    // One vectored write per session per turn; only what the kernel refuses counts as queued.
    for (const connection of this.touched) {
      if (connection.closing) continue;
      const cut = connection.output.flush(nowMs);
      if (cut !== null) this.cutSlowReader(connection, cut);
      else if (connection.output.backlogged) this.backlogged.add(connection);
    }
    this.touched = [];
    for (const packets of later) this.sendPackets(packets);
    for (const close of ready.closes) this.close(close.session, close.reason);
    this.updateThrottle();
    this.armDeadline();
  }

  /** One batch for the transport (with the native addon: GSO runs), let out at once. */
  private sendPackets(packets: OutboundPacket[]): void {
    const transport = this.options.transport;
    if (!transport || packets.length === 0) return;
    for (const packet of packets) transport.send(packet);
    transport.flush?.();
  }

  private close(id: number, reason: CloseReason): void {
    const connection = this.connections.get(id);
    if (!connection || connection.closing) return;
    connection.closing = true;
    connection.output.discard();
    this.backlogged.delete(connection);
    const socket = connection.socket;
    if (reason === 'quota' || reason === 'handshake-rejected') {
      // The reject byte went out with this turn's flush; close after it, never waiting long on a peer that does not read.
      socket.end();
      setTimeout(() => socket.destroy(), LINGER_MS).unref();
    } else {
      socket.destroy();
    }
  }

  private cutSlowReader(connection: Connection, why: string): void {
    const name = this.node.sessionName(connection.id);
    this.options.logger.warn({ session: connection.id, name, why }, 'cutting slow reader');
    connection.closing = true;
    connection.output.discard();
    this.backlogged.delete(connection);
    connection.socket.destroy();
    this.node.sessionEnded(connection.id, 'slow', why);
    this.schedule();
  }

  // ---- throttling and timers -------------------------------------------------------------

  private updateThrottle(): void {
    const nowMs = this.now();
    let holding = false;
    for (const connection of this.backlogged) {
      const cut = connection.output.check(nowMs);
      if (cut !== null) this.cutSlowReader(connection, cut);
      else if (!connection.output.backlogged) this.backlogged.delete(connection);
      else if (connection.output.holdsSenders(nowMs)) holding = true;
    }
    const throttle = this.node.inputThrottled() || holding;
    if (this.backlogged.size > 0 && this.stallTimer === null) {
      this.stallTimer = setInterval(() => this.updateThrottle(), STALL_CHECK_INTERVAL_MS);
    } else if (this.backlogged.size === 0 && this.stallTimer !== null) {
      clearInterval(this.stallTimer);
      this.stallTimer = null;
    }
    if (throttle === this.throttled) return;
    this.throttled = throttle;
    for (const connection of this.connections.values()) {
      if (throttle && !connection.paused && this.node.isOpen(connection.id)) this.pause(connection);
      else if (!throttle && connection.paused) {
        connection.paused = false;
        connection.socket.resume();
      }
    }
  }

  private pause(connection: Connection): void {
    connection.paused = true;
    connection.socket.pause();
  }

  private armDeadline(): void {
    const deadline = this.node.nextDeadlineMs();
    if (deadline === this.deadlineAtMs) return;
    if (this.deadlineTimer) clearTimeout(this.deadlineTimer);
    this.deadlineTimer = null;
    this.deadlineAtMs = deadline;
    if (deadline === null) return;
    this.deadlineTimer = setTimeout(
      () => {
        this.deadlineTimer = null;
        this.deadlineAtMs = null;
        this.node.tick(this.now());
        this.schedule();
      },
      Math.max(0, deadline - this.now()),
    );
  }
}

/** What a TLS session proved: the subject CN of a client certificate the CA vouched for, or null. */
function tlsPeerOf(socket: tls.TLSSocket, certificateRequired: boolean): { certificate: string | null; certificateRequired: boolean } {
  let certificate: string | null = null;
  if (socket.authorized) {
    const subject = socket.getPeerCertificate().subject as Record<string, string | string[]> | undefined;
    const cn = subject?.CN;
    certificate = typeof cn === 'string' ? cn : Array.isArray(cn) ? (cn[0] ?? null) : null;
  }
  return { certificate, certificateRequired };
}

/** True when a unicast is among the packets: a token, token ack or HURRY that another daemon waits for. */
function carriesToken(packets: OutboundPacket[]): boolean {
  for (const packet of packets) if (packet.to !== 'all') return true;
  return false;
}

/** Bytes libuv holds for this socket because the kernel would not take them yet. */
function unwrittenBytes(socket: net.Socket): number {
  const handle = (socket as unknown as { _handle?: { writeQueueSize?: number } | null })._handle;
  return handle?.writeQueueSize ?? 0;
}

function listen(server: net.Server, options: net.ListenOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error) => reject(error);
    server.once('error', onError);
    server.listen(options, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

function removeSocketFile(path: string): void {
  try {
    unlinkSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}
