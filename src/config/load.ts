/**
 * Finding and reading spread.conf, and choosing which configured daemon this process is
 * (§8.8). The only module of src/config that touches the file system.
 */
import { existsSync, readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { resolve } from 'node:path';
import type { DaemonSpec, SpreadConfig } from './types.js';
import { ConfigError } from './errors.js';
import { parseConfig, MAX_DAEMON_NAME_LENGTH } from './parser.js';
import { defaultConfig } from './defaults.js';
import { parseIpAddress, canonicalAddress, isLoopbackAddress } from './address.js';

export { configDiff } from './diff.js';

export const CONFIG_FILE_NAME = 'spread.conf';
export const SYSTEM_CONFIG_DIR = '/etc';

export interface ConfigSearchOptions {
  /** Directory `./spread.conf` is looked up in; defaults to process.cwd(). */
  cwd?: string;
  /** Directory of the system-wide file; defaults to /etc. */
  systemDir?: string;
}

/** Candidate files in Spread's order: the -c file, ./spread.conf, then the system file. */
export function configSearchPath(path: string | undefined, options: ConfigSearchOptions = {}): string[] {
  const cwd = options.cwd ?? process.cwd();
  const candidates = [
    ...(path === undefined ? [] : [resolve(cwd, path)]),
    resolve(cwd, CONFIG_FILE_NAME),
    resolve(options.systemDir ?? SYSTEM_CONFIG_DIR, CONFIG_FILE_NAME),
  ];
  return [...new Set(candidates)];
}

/**
 * Reads the first existing candidate. Like Spread, a missing -c file falls through to the
 * other locations; only when no path was given and nothing exists does the built-in
 * one-daemon default apply (a given but unfindable path is an error, not a silent default).
 */
export function loadConfig(path?: string, options: ConfigSearchOptions = {}): SpreadConfig {
  const candidates = configSearchPath(path, options);
  const found = candidates.find((candidate) => existsSync(candidate));
  if (found !== undefined) return parseConfig(readFileSync(found, 'utf8'), found);
  if (path === undefined) return defaultConfig();
  throw new ConfigError(path, 0, 0, `configuration file not found (looked in ${candidates.join(', ')})`);
}

function sameAddress(a: string, b: string): boolean {
  const left = parseIpAddress(a);
  const right = parseIpAddress(b);
  if (!left || !right) return a === b;
  const withoutZone = (text: string): string => text.replace(/%.*$/, '');
  return withoutZone(canonicalAddress(left)) === withoutZone(canonicalAddress(right));
}

/**
 * Addresses of this host. Configured daemons on loopback count as local too: Linux
 * answers the whole loopback net, which is how several daemons share one test host.
 */
export function localAddresses(config?: SpreadConfig): string[] {
  const addresses = ['127.0.0.1', '::1'];
  for (const entries of Object.values(networkInterfaces())) {
    for (const entry of entries ?? []) addresses.push(entry.address);
  }
  for (const daemon of config?.daemons ?? []) if (isLoopbackAddress(daemon.address)) addresses.push(daemon.address);
  return addresses;
}

/**
 * Which configured daemon this process is (§8.8): the one named by -n, else the first in
 * file order whose address is local. Either way the address must be one of `localAddresses`.
 */
export function chooseIdentity(config: SpreadConfig, name: string | undefined, localAddresses: string[]): DaemonSpec {
  const fail = (message: string): never => {
    throw new ConfigError(config.source, 0, 0, message);
  };
  const isLocal = (daemon: DaemonSpec): boolean => localAddresses.some((local) => sameAddress(local, daemon.address));
  if (name !== undefined) {
    if (name.length > MAX_DAEMON_NAME_LENGTH) fail(`daemon name '${name}' is longer than ${MAX_DAEMON_NAME_LENGTH} characters`);
    const named = config.daemons.find((daemon) => daemon.name === name);
    if (!named) return fail(`no daemon named '${name}' in the configuration (known: ${config.daemons.map((daemon) => daemon.name).join(', ')})`);
    if (!isLocal(named)) fail(`daemon '${name}' has address ${named.address}, which is not an address of this host`);
    return named;
  }
  const local = config.daemons.find(isLocal);
  if (!local) {
    return fail(`no configured daemon has an address of this host (host: ${localAddresses.join(', ') || 'none'}); use -n <name>`);
  }
  return local;
}
