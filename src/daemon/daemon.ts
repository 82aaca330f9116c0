/**
 * Wiring of one daemon process: configuration → identity → ring → DaemonNode →
 * DaemonServer, plus signals. The only daemon module that reads files or the clock.
 *
 * Monitor (§9): spmonitor and `tspread monitor` send to the daemon's address at segment
 * port P. With a ring, the UDP link hands those datagrams to a MonitorEndpoint; a ring of
 * one binds a UDP socket on address:P just for them (a warning, not a failure, when the
 * port is taken). STATUS is answered; PARTITION drops ring traffic from other components
 * (terminate: the process exits cleanly); FLOW CONTROL and RELOAD are logged as not
 * applied (the ring's windows are fixed at creation; no configuration reload yet).
 * Ring diagnostics (refused daemons, e.g. a different configuration hash, and the ring's
 * notes) are logged as they appear.
 */
import dgram from 'node:dgram';
import { existsSync, readFileSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chooseIdentity, loadConfig, localAddresses } from '../config/load.js';
import type { DaemonSpec, SpreadConfig } from '../config/types.js';
import { DEFAULT_UNIX_SOCKET_DIR, SESSION_MESSAGES_MAX_DEFAULT } from '../protocol/constants.js';
import { isLoopbackAddress } from '../config/address.js';
import { createRingFromConfig, datagramBytesFor } from '../ring/from-config.js';
import { DATAGRAM_BYTES_MIN } from '../ring/limits.js';
import { gcmEngine } from '../security/gcm.js';
import { RING_SEAL_OVERHEAD_BYTES, RingSealer } from '../security/ring-seal.js';
import {
  SecurityReloader,
  loadAccessControl,
  loadPasswords,
  loadRingKeys,
  loadTlsContext,
  refusalLogger,
  securityFiles,
  securityStatusOf,
} from '../security/daemon-security.js';
import type { SecurityStatus } from './status-types.js';
import { passwordCheckLimiter } from '../security/passwords.js';
import { SoloRing } from '../ring/solo.js';
import type { Ring } from '../ring/types.js';
import { ACCESS_IP_FILES, parseAccessIp, type AccessIpRules } from './access-ip.js';
import { DaemonNode, type NodeLogger } from './node.js';
import { type RingIdentity, RingIdentityFile, ringIdentityPath, unkeptRingIdentity } from './ring-identity.js';
import { DaemonServer } from './server.js';
import { UdpRingLink, interfaceMtuBytes, monotonicWallClock, receiveBufferBytesGranted } from './udp.js';
import { startManagementServer, type ManagementServer } from '../management/http.js';
import { MonitorEndpoint } from '../management/monitor-endpoint.js';
import { isMonitorDatagram, type MonitorOutcome } from '../management/monitor-protocol.js';

export const SESSION_BYTES_MAX_DEFAULT = 64 * 1024 * 1024;
/** How often ring diagnostics (refusals, notes) are checked for new entries to log. */
const DIAGNOSTICS_POLL_MS = 500;

export interface DaemonOptions {
  configPath?: string;
  name?: string;
  /** Overrides the segment port for client listeners. */
  port?: number;
  /** Directory of the Unix socket `<dir>/<port>`; null = no Unix socket. */
  unixDir?: string | null;
  handshakeDeadlineMs?: number;
  slowReaderStallMs?: number;
  logger: NodeLogger;
  /**
   * Builds the ring. Default: a ring of one (SoloRing) when the configuration has one
   * daemon, else the TotemRing over UDP (src/ring/totem.ts, src/daemon/udp.ts).
   */
  createRing?: (config: SpreadConfig, me: DaemonSpec, nowMs: number) => Ring;
  /**
   * Directory of the file that keeps this daemon's ring identity across restarts
   * (ring-identity.ts). Default: spread.conf's RuntimeDir, else the system's temporary
   * directory. null keeps nothing: ring ids then rest on the clock alone.
   */
  stateDir?: string | null;
  /** Serve /status, /metrics and the dashboard on this address (off when absent). */
  http?: { host: string; port: number };
  /**
   * Answer the monitor protocol (§9) on UDP port P (default true). For a ring of one this
   * binds address:P; false leaves the port to someone else (tests that emulate it).
   */
  monitor?: boolean;
  /**
   * A monitor's PARTITION asked this daemon to terminate. Default: emit SIGTERM to this
   * process's handlers (the CLI's clean exit), or stop the daemon when there are none.
   */
  onTerminate?: () => void;
}

export interface RunningDaemon {
  node: DaemonNode;
  server: DaemonServer;
  /** The ring's UDP link (null for a ring of one): the monitor endpoint hooks in here. */
  link: UdpRingLink | null;
  port: number;
  unixPath: string | null;
  /** The status/metrics/dashboard server, when `http` was given. */
  management: ManagementServer | null;
  /** The monitor-protocol endpoint (null with `monitor: false`). */
  monitor: MonitorEndpoint | null;
  /** TLS client port (null without TlsPort). */
  tlsPort: number | null;
  /** Re-reads ring keys, password and access-control files (the CLI calls it on SIGHUP). */
  reloadSecurity(why?: string): void;
  /** What the security layers refused so far (also in /metrics). */
  securityStatus(): SecurityStatus;
  stop(): Promise<void>;
}

/** spread.access_ip from Spread's search path (§2.5); null when no file exists. */
export function loadAccessIp(logger: NodeLogger): AccessIpRules | null {
  for (const file of ACCESS_IP_FILES) {
    if (!existsSync(file)) continue;
    const rules = parseAccessIp(readFileSync(file, 'latin1'));
    for (const error of rules.errors) logger.warn({ file, line: error.line, text: error.text }, 'bad spread.access_ip line');
    logger.info({ file, rules: rules.networks.length, unix: rules.allowUnix }, 'loaded IP access rules');
    return rules;
  }
  logger.warn({ searched: ACCESS_IP_FILES }, 'IP authentication enabled but no spread.access_ip found: IP denies everyone');
  return null;
}

/**
 * Client bind addresses (§1.2): every `C` (or letterless) interface, else the wildcard —
 * except for a ring of one on a loopback address (the default configuration): it listens on
 * that address only, so nothing off the host reaches it unasked. (Spread listens everywhere.)
 */
export function clientBindAddresses(config: SpreadConfig, me: DaemonSpec): string[] {
  const explicit = me.interfaces.filter((entry) => entry.kinds.includes('C')).map((entry) => entry.address);
  if (explicit.length > 0) return [...new Set(explicit)];
  if (config.daemons.length === 1 && isLoopbackAddress(me.address)) return [me.address];
  return [config.params.activeIpVersion === 'IPv6' ? '::' : '0.0.0.0'];
}

export async function startDaemonProcess(options: DaemonOptions): Promise<RunningDaemon> {
  const logger = options.logger;
  const config = loadConfig(options.configPath);
  for (const warning of config.warnings ?? []) logger.warn({ source: config.source }, warning);
  const me = chooseIdentity(config, options.name, localAddresses(config));
  const port = options.port ?? config.segments[me.segmentIndex].port;
  const clock = monotonicWallClock;
  const nowMs = clock();
  const stateDir = options.stateDir === undefined ? (config.params.runtimeDir ?? tmpdir()) : options.stateDir;
  const identity = stateDir === null ? unkeptRingIdentity(Math.random) : openRingIdentity(ringIdentityPath(stateDir, me.name, port), logger);
  const files = securityFiles(config);
  let ring: Ring;
  let link: UdpRingLink | null = null;
  let sealer: RingSealer | null = null;
  if (options.createRing) ring = options.createRing(config, me, nowMs);
  else if (config.daemons.length > 1) {
    const receiveBufferBytes = receiveBufferBytesGranted();
    const linkMtuBytes = interfaceMtuBytes(me.address);
    let ringConfig = config;
    if (files.ringKeys !== null) {
      const gcm = gcmEngine();
      sealer = new RingSealer(loadRingKeys(files.ringKeys), me.vid, Date.now, gcm.engine);
      // The sealed datagram must fit where the plain one would: the ring's packets shrink by the overhead.
      const sealedBytes = datagramBytesFor(config, receiveBufferBytes, linkMtuBytes);
      if (sealedBytes - RING_SEAL_OVERHEAD_BYTES < DATAGRAM_BYTES_MIN) {
        throw new Error(`DatagramBytes ${sealedBytes} is too small for a sealed ring: at least ${DATAGRAM_BYTES_MIN + RING_SEAL_OVERHEAD_BYTES} with RingKeyFile`);
      }
      ringConfig = { ...config, params: { ...config.params, datagramBytes: sealedBytes - RING_SEAL_OVERHEAD_BYTES } };
      logger.info({ file: files.ringKeys, ...sealer.keyIds(), overheadBytes: RING_SEAL_OVERHEAD_BYTES, engine: gcm.engine.name }, 'ring datagrams sealed (AES-256-GCM)');
      if (gcm.fallbackReason !== null) logger.warn({ reason: gcm.fallbackReason }, 'ring sealing through node:crypto, not the native addon: slower');
    }
    ring = createRingFromConfig(ringConfig, me, nowMs, { receiveBufferBytes, linkMtuBytes }, identity);
    logger.info({ datagramBytes: ring.status().datagramBytes, receiveBufferBytes, linkMtuBytes }, 'ring datagram size');
    link = new UdpRingLink({
      config,
      myVid: me.vid,
      clock,
      onBatchingOff: (reason) => logger.warn({ reason }, 'ring UDP batching stopped: one datagram per send from now on'),
      sealer,
      onRefused: refusalLogger(logger),
    });
  } else {
    ring = new SoloRing(me.vid, nowMs, identity.ringTimeFloor);
  }
  // A ring id is durable before anything carrying it leaves: the ring of one's id already exists.
  const keepRingTime = () => identity.keep(ring.formedRingTime?.() ?? 0);
  keepRingTime();
  const params = config.params;
  const uses = (method: string) => params.allowedAuthMethods.includes(method) || params.requiredAuthMethods.includes(method);
  if (uses('PWORD') && files.passwords === null) logger.warn({}, 'PWORD is enabled but no PasswordFile is set: PWORD refuses everyone');
  if (uses('CERT') && params.security.tlsClientCertificates === 'none') {
    logger.warn({}, 'CERT is enabled but TlsClientCertificates is none: no session has a certificate, CERT refuses everyone');
  }
  const node = new DaemonNode({
    config,
    me,
    ring,
    nowMs,
    random: Math.random,
    accessIp: uses('IP') ? loadAccessIp(logger) : null,
    passwords: files.passwords === null ? null : loadPasswords(files.passwords),
    passwordCheckAllowed: passwordCheckLimiter(clock),
    accessControl: files.accessControl === null ? null : loadAccessControl(files.accessControl),
    handshakeDeadlineMs: options.handshakeDeadlineMs,
    port,
    logger,
  });
  const unixDir = options.unixDir === undefined ? DEFAULT_UNIX_SOCKET_DIR : options.unixDir;
  const unixPath = unixDir === null ? null : join(unixDir, String(port));
  const security = params.security;
  const clientHosts = clientBindAddresses(config, me);
  const server = new DaemonServer({
    node,
    port,
    // RequireTls: no plain TCP listener (the Unix socket, on this host only, stays).
    tcpHosts: security.requireTls ? [] : clientHosts,
    tls:
      security.tlsPort === null
        ? undefined
        : { hosts: clientHosts, port: security.tlsPort, secure: loadTlsContext(files), clientCertificates: security.tlsClientCertificates },
    unixPath,
    maxSessionMessages: params.maxSessionMessages ?? SESSION_MESSAGES_MAX_DEFAULT,
    maxSessionBytes: params.maxSessionBytes ?? SESSION_BYTES_MAX_DEFAULT,
    slowReaderStallMs: options.slowReaderStallMs,
    logger,
    transport: link ?? undefined,
    now: clock,
    beforeEffects: keepRingTime,
  });
  const reloader = new SecurityReloader(files, { sealer, setPasswords: (t) => node.setPasswords(t), setAccessControl: (c) => node.setAccessControl(c) }, logger);
  reloader.watch();
  const securityStatus = (): SecurityStatus => securityStatusOf(sealer, link?.sealStats() ?? null, node.refusals());
  const snapshot = () => ({ ...node.statusSnapshot(clock()), security: securityStatus() });
  let stopped = false;
  let stop: () => Promise<void> = async () => {};
  let monitor: MonitorEndpoint | null = null;
  let soloMonitorSocket: dgram.Socket | null = null;
  if (options.monitor !== false) {
    monitor = new MonitorEndpoint({
      config: () => config,
      snapshot,
      me,
      logger,
      onPartition: (partition) => applyPartition(partition),
      onFlowControl: (settings) => {
        const { kind: _kind, ...requested } = settings;
        const before = ring.status();
        const previous = { window: before.window, personalWindow: before.personalWindow, acceleratedWindow: before.acceleratedWindow };
        const refused = ring.setFlowControl ? ring.setFlowControl(requested) : 'a ring of one has no flow control';
        if (refused !== null) logger.warn({ requested, current: previous, reason: refused }, 'monitor flow control not applied');
        else logger.info({ requested, previous }, 'monitor flow control applied');
      },
      onReload: () => logger.warn({ config: config.source }, 'monitor reload not applied: configuration reload is not implemented'),
    });
  }
  const applyPartition = (partition: Extract<MonitorOutcome, { kind: 'partition' }>): void => {
    if (partition.terminate) {
      logger.info({}, 'monitor asked this daemon to terminate');
      if (options.onTerminate) options.onTerminate();
      else if (process.listenerCount('SIGTERM') > 0) process.emit('SIGTERM', 'SIGTERM');
      else void stop();
      return;
    }
    const blocked = config.daemons
      .filter((daemon, index) => daemon.vid !== me.vid && (partition.components[index] ?? 0) !== partition.myComponent)
      .map((daemon) => daemon.vid);
    if (link === null) {
      logger.info({ components: partition.components }, 'monitor partition: a ring of one has no one to cut off');
      return;
    }
    link.setPartition(blocked);
    logger.info(
      { component: partition.myComponent, cutOff: config.daemons.filter((daemon) => blocked.includes(daemon.vid)).map((daemon) => daemon.name) },
      blocked.length === 0 ? 'monitor partition lifted' : 'monitor partition applied: dropping ring traffic from other components',
    );
  };
  if (link) {
    const ringLink = link;
    // Token-port datagrams (tokens, membership) are acted on at once: the next daemon waits for them.
    ringLink.onDatagram((bytes, _nowMs, tokenPort) => server.ringPacket(bytes, tokenPort));
    if (monitor) {
      const endpoint = monitor;
      ringLink.onMonitorDatagram((bytes, from) => endpoint.handle(bytes, from));
    }
    await ringLink.start();
    const batching = ringLink.batching();
    if (batching.reason === null) logger.info({ gsoSends: true, groReads: true }, 'ring UDP batching on: GSO sends, GRO reads (native addon)');
    else if (batching.gsoSends) logger.warn({ ...batching }, 'ring UDP batching partial: GSO sends, one datagram per read');
    else logger.warn({ ...batching }, 'ring UDP batching off: one datagram per send and read');
  } else if (monitor) {
    soloMonitorSocket = await bindSoloMonitor(config.segments[me.segmentIndex].port, me.address, monitor, logger);
  }
  const closeMonitor = () => {
    monitor?.close();
    soloMonitorSocket?.close();
    soloMonitorSocket = null;
  };
  try {
    await server.start();
  } catch (error) {
    reloader.close();
    closeMonitor();
    await link?.close();
    throw error;
  }
  let management: ManagementServer | null = null;
  if (options.http) {
    try {
      management = await startManagementServer({
        ...options.http,
        snapshot,
        title: `tspread ${me.name}`,
      });
    } catch (error) {
      reloader.close();
      closeMonitor();
      await server.stop();
      await link?.close();
      throw error;
    }
    logger.info({ url: management.url }, 'status, metrics and dashboard served');
  }
  logger.info(
    { daemon: me.name, vid: me.vid, port, tlsPort: server.tlsPort(), unixPath, config: config.source, hash: config.hash, daemons: config.daemons.length },
    'daemon ready',
  );
  const diagnostics = watchDiagnostics(ring, config, logger);
  stop = async () => {
    if (stopped) return;
    stopped = true;
    clearInterval(diagnostics);
    reloader.close();
    closeMonitor();
    await management?.close();
    await server.stop();
    await link?.close();
  };
  return {
    node,
    server,
    link,
    port,
    unixPath,
    management,
    monitor,
    tlsPort: server.tlsPort(),
    reloadSecurity: (why = 'reload requested') => reloader.reload(why),
    securityStatus,
    stop: () => stop(),
  };
}

/** The ring identity file; when it cannot be used, a warning and nothing kept (ring ids then rest on the clock). */
function openRingIdentity(path: string, logger: NodeLogger): RingIdentity {
  try {
    const identity = RingIdentityFile.open(path, Math.random);
    logger.info({ file: path, incarnation: identity.incarnation, ringTimeFloor: identity.ringTimeFloor }, 'ring identity');
    return identity;
  } catch (error) {
    logger.warn({ file: path, error: String(error) }, 'ring identity not kept: a restart within the same second may reuse a ring id');
    return unkeptRingIdentity(Math.random);
  }
}

/** A ring of one has no UDP link: a socket on address:P for monitor packets only. Null when P is taken. */
async function bindSoloMonitor(port: number, address: string, monitor: MonitorEndpoint, logger: NodeLogger): Promise<dgram.Socket | null> {
  const socket = dgram.createSocket(isIPv6(address.replace(/%.*$/, '')) ? 'udp6' : 'udp4');
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(port, address, () => {
        socket.off('error', reject);
        resolve();
      });
    });
  } catch (error) {
    socket.close();
    logger.warn({ address, port, error: String(error) }, 'monitor port not bound: spmonitor cannot reach this daemon');
    return null;
  }
  socket.on('error', (error) => logger.debug({ error: String(error) }, 'monitor socket error'));
  socket.on('message', (bytes, from) => {
    if (isMonitorDatagram(bytes)) monitor.handle(bytes, from);
  });
  return socket;
}

/**
 * Logs what the ring reports about daemons it refuses (with the reason, e.g. a different
 * configuration hash) and its diagnostic notes, once each, as they appear.
 */
function watchDiagnostics(ring: Ring, config: SpreadConfig, logger: NodeLogger): NodeJS.Timeout {
  const refusals = new Map<number, string>();
  let lastNote: { atMs: number; text: string } | null = null;
  const nameOf = (vid: number) => config.daemons.find((daemon) => daemon.vid === vid)?.name ?? `VID ${vid >>> 0}`;
  const poll = () => {
    const diagnostics = ring.diagnostics?.();
    if (!diagnostics) return;
    for (const { vid, reason } of diagnostics.refused) {
      if (refusals.get(vid) === reason) continue;
      refusals.set(vid, reason);
      const daemon = config.daemons.find((entry) => entry.vid === vid);
      logger.warn({ daemon: nameOf(vid), vid: vid >>> 0, address: daemon?.address, reason }, 'refusing daemon');
    }
    const log = diagnostics.log;
    let start = 0;
    if (lastNote !== null) {
      const seen = lastNote;
      for (let index = log.length - 1; index >= 0; index--) {
        if (log[index].atMs === seen.atMs && log[index].text === seen.text) {
          start = index + 1;
          break;
        }
      }
    }
    for (let index = start; index < log.length; index++) logger.info({ atMs: Math.round(log[index].atMs) }, `ring: ${log[index].text}`);
    if (log.length > 0) lastNote = { atMs: log[log.length - 1].atMs, text: log[log.length - 1].text };
  };
  const timer = setInterval(poll, DIAGNOSTICS_POLL_MS);
  timer.unref();
  return timer;
}
