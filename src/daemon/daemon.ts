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
import { SoloRing } from '../ring/solo.js';
import type { Ring } from '../ring/types.js';
import { ACCESS_IP_FILES, parseAccessIp, type AccessIpRules } from './access-ip.js';
import { DaemonNode, type NodeLogger } from './node.js';
import { DaemonServer } from './server.js';

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
  /** Builds the ring; defaults to a ring of one. The multi-daemon TotemRing plugs in here. */
  createRing?: (config: SpreadConfig, me: DaemonSpec, nowMs: number) => Ring;
}

export interface RunningDaemon {
  node: DaemonNode;
  server: DaemonServer;
  port: number;
  unixPath: string | null;
  stop(): Promise<void>;
}

export function localAddresses(): string[] {
  const addresses = ['127.0.0.1', '::1'];
  for (const entries of Object.values(networkInterfaces())) {
    for (const entry of entries ?? []) addresses.push(entry.address);
  }
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
  const me = chooseIdentity(config, options.name, localAddresses());
  const port = options.port ?? config.segments[me.segmentIndex].port;
  const nowMs = Date.now();
  let ring: Ring;
  if (options.createRing) ring = options.createRing(config, me, nowMs);
  else {
    if (config.daemons.length > 1) {
      logger.warn({ daemons: config.daemons.length }, 'multi-daemon ring not wired yet: running as a ring of one');
    }
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
  });
  await server.start();
  logger.info(
    { daemon: me.name, vid: me.vid, port, unixPath, config: config.source, hash: config.hash },
    'daemon ready',
  );
  return { node, server, port, unixPath, stop: () => server.stop() };
}
