/**
 * Wiring of one daemon process: configuration → identity → ring → DaemonNode →
 * DaemonServer, plus signals. The only daemon module that reads files or the clock.
 */
import { existsSync, readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { chooseIdentity, loadConfig } from '../config/load.js';
import type { DaemonSpec, SpreadConfig } from '../config/types.js';
import { DEFAULT_UNIX_SOCKET_DIR, SESSION_MESSAGES_MAX_DEFAULT } from '../protocol/constants.js';
import { createRingFromConfig } from '../ring/from-config.js';
import { SoloRing } from '../ring/solo.js';
import type { Ring } from '../ring/types.js';
import { ACCESS_IP_FILES, parseAccessIp, type AccessIpRules } from './access-ip.js';
import { DaemonNode, type NodeLogger } from './node.js';
import { DaemonServer } from './server.js';
import { UdpRingLink, monotonicWallClock } from './udp.js';
import { startManagementServer, type ManagementServer } from '../management/http.js';

export const SESSION_BYTES_MAX_DEFAULT = 64 * 1024 * 1024;

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
  /** Serve /status, /metrics and the dashboard on this address (off when absent). */
  http?: { host: string; port: number };
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
  stop(): Promise<void>;
}

/**
 * Addresses of this host. Configured daemons in 127.0.0.0/8 count as local too: Linux
 * answers the whole loopback net, which is how several daemons share one test host.
 */
export function localAddresses(config?: SpreadConfig): string[] {
  const addresses = ['127.0.0.1', '::1'];
  for (const entries of Object.values(networkInterfaces())) {
    for (const entry of entries ?? []) addresses.push(entry.address);
  }
  for (const daemon of config?.daemons ?? []) if (daemon.address.startsWith('127.')) addresses.push(daemon.address);
  return addresses;
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

/** Client bind addresses (§1.2): every `C` (or letterless) interface, else the wildcard. */
export function clientBindAddresses(config: SpreadConfig, me: DaemonSpec): string[] {
  const explicit = me.interfaces.filter((entry) => entry.kinds.includes('C')).map((entry) => entry.address);
  if (explicit.length > 0) return [...new Set(explicit)];
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
  let ring: Ring;
  let link: UdpRingLink | null = null;
  if (options.createRing) ring = options.createRing(config, me, nowMs);
  else if (config.daemons.length > 1) {
    ring = createRingFromConfig(config, me, nowMs);
    link = new UdpRingLink({ config, myVid: me.vid, clock });
  } else {
    ring = new SoloRing(me.vid, nowMs);
  }
  const params = config.params;
  const usesIp = params.allowedAuthMethods.includes('IP') || params.requiredAuthMethods.includes('IP');
  const node = new DaemonNode({
    config,
    me,
    ring,
    nowMs,
    random: Math.random,
    accessIp: usesIp ? loadAccessIp(logger) : null,
    handshakeDeadlineMs: options.handshakeDeadlineMs,
    port,
    logger,
  });
  const unixDir = options.unixDir === undefined ? DEFAULT_UNIX_SOCKET_DIR : options.unixDir;
  const unixPath = unixDir === null ? null : join(unixDir, String(port));
  const server = new DaemonServer({
    node,
    port,
    tcpHosts: clientBindAddresses(config, me),
    unixPath,
    maxSessionMessages: params.maxSessionMessages ?? SESSION_MESSAGES_MAX_DEFAULT,
    maxSessionBytes: params.maxSessionBytes ?? SESSION_BYTES_MAX_DEFAULT,
    slowReaderStallMs: options.slowReaderStallMs,
    logger,
    transport: link ?? undefined,
    now: clock,
  });
  if (link) {
    const ringLink = link;
    ringLink.onDatagram((bytes) => server.ringPacket(bytes));
    await ringLink.start();
  }
  try {
    await server.start();
  } catch (error) {
    await link?.close();
    throw error;
  }
  let management: ManagementServer | null = null;
  if (options.http) {
    try {
      management = await startManagementServer({
        ...options.http,
        snapshot: () => node.statusSnapshot(clock()),
        title: `tspread ${me.name}`,
      });
    } catch (error) {
      await server.stop();
      await link?.close();
      throw error;
    }
    logger.info({ url: management.url }, 'status, metrics and dashboard served');
  }
  logger.info(
    { daemon: me.name, vid: me.vid, port, unixPath, config: config.source, hash: config.hash, daemons: config.daemons.length },
    'daemon ready',
  );
  const stop = async () => {
    await management?.close();
    await server.stop();
    await link?.close();
  };
  return { node, server, link, port, unixPath, management, stop };
}
