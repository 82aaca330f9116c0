/**
 * The daemon's security files (docs/security.md): ring keys, TLS certificate and key,
 * password file, access-control file. Reads them at start (a bad file stops the daemon
 * with a clear error) and again on reload() — SIGHUP or a change seen by the file watch —
 * when a bad file is logged and the previous contents stay in force.
 */
import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import type { SecureContextOptions } from 'node:tls';
import type { SecuritySettings, SpreadConfig } from '../config/types.js';
import type { NodeLogger } from '../daemon/node.js';
import { parseAccessControl, type AccessControl } from './access-control.js';
import { parsePasswords, type PasswordTable } from './passwords.js';
import { parseRingKeys, type RingKeySet } from './ring-keys.js';
import { RingSealer, type SealStats } from './ring-seal.js';
import type { SecurityStatus } from '../daemon/status-types.js';

/** How often watched files are looked at (stat polling: works on every file system). */
const WATCH_INTERVAL_MS = 1000;
/** At most one log line per this long about refused ring datagrams. */
const REFUSAL_LOG_INTERVAL_MS = 10_000;

export interface SecurityFiles {
  ringKeys: string | null;
  passwords: string | null;
  accessControl: string | null;
  tlsCertificate: string | null;
  tlsKey: string | null;
  tlsCa: string | null;
}

/** Paths of spread.conf's security settings; relative ones are relative to spread.conf's directory. */
export function securityFiles(config: SpreadConfig): SecurityFiles {
  const base = config.source.startsWith('<') ? process.cwd() : dirname(resolve(config.source));
  const at = (path: string | null) => (path === null ? null : isAbsolute(path) ? path : resolve(base, path));
  const s: SecuritySettings = config.params.security;
  return {
    ringKeys: at(s.ringKeyFile),
    passwords: at(s.passwordFile),
    accessControl: at(s.accessControlFile),
    tlsCertificate: at(s.tlsCertificateFile),
    tlsKey: at(s.tlsKeyFile),
    tlsCa: at(s.tlsCaFile),
  };
}

export function loadRingKeys(path: string): RingKeySet {
  return parseRingKeys(readFileSync(path, 'utf8'), path);
}

export function loadPasswords(path: string): PasswordTable {
  return parsePasswords(readFileSync(path, 'utf8'), path);
}

export function loadAccessControl(path: string): AccessControl {
  return parseAccessControl(readFileSync(path, 'utf8'), path);
}

export function loadTlsContext(files: SecurityFiles): SecureContextOptions {
  if (files.tlsCertificate === null || files.tlsKey === null) throw new Error('TLS needs TlsCertificateFile and TlsKeyFile');
  return {
    cert: readFileSync(files.tlsCertificate),
    key: readFileSync(files.tlsKey),
    ...(files.tlsCa === null ? {} : { ca: readFileSync(files.tlsCa) }),
    minVersion: 'TLSv1.2',
  };
}

/** Where reloaded contents go. */
export interface SecurityTargets {
  sealer: RingSealer | null;
  setPasswords(table: PasswordTable | null): void;
  setAccessControl(control: AccessControl | null): void;
}

/** Re-reads the reloadable files; a file that fails keeps its previous contents (logged). */
export class SecurityReloader {
  private readonly watched: string[] = [];

  constructor(
    private readonly files: SecurityFiles,
    private readonly targets: SecurityTargets,
    private readonly logger: NodeLogger,
  ) {}

  reload(why: string): void {
    const { files, targets, logger } = this;
    if (files.ringKeys !== null && targets.sealer !== null) {
      const path = files.ringKeys;
      this.attempt(path, () => {
        targets.sealer!.setKeys(loadRingKeys(path));
        logger.info({ file: path, why, ...targets.sealer!.keyIds() }, 'ring keys reloaded');
      });
    }
    if (files.passwords !== null) {
      const path = files.passwords;
      this.attempt(path, () => {
        const table = loadPasswords(path);
        targets.setPasswords(table);
        logger.info({ file: path, why, users: table.size }, 'password file reloaded');
      });
    }
    if (files.accessControl !== null) {
      const path = files.accessControl;
      this.attempt(path, () => {
        const control = loadAccessControl(path);
        targets.setAccessControl(control);
        logger.info({ file: path, why, rules: control.rules.length }, 'access-control file reloaded');
      });
    }
  }

  /** Reloads when any reloadable file changes (stat polling, unref'd). */
  watch(): void {
    for (const path of [this.files.ringKeys, this.files.passwords, this.files.accessControl]) {
      if (path === null) continue;
      watchFile(path, { interval: WATCH_INTERVAL_MS, persistent: false }, (now, before) => {
        if (now.mtimeMs !== before.mtimeMs || now.size !== before.size || now.ino !== before.ino) this.reload(`${path} changed`);
      });
      this.watched.push(path);
    }
  }

  close(): void {
    for (const path of this.watched) unwatchFile(path);
    this.watched.length = 0;
  }

  private attempt(path: string, load: () => void): void {
    try {
      load();
    } catch (error) {
      this.logger.warn({ file: path, error: error instanceof Error ? error.message : String(error) }, 'security file not reloaded: the previous contents stay in force');
    }
  }
}

/** Logs refused ring datagrams at most once per interval, with the counts since the last line. */
export function refusalLogger(logger: NodeLogger, clock: () => number = Date.now): (why: string, from: { address: string; port: number }) => void {
  let lastAtMs = -Infinity;
  let since: Record<string, number> = {};
  let lastFrom = '';
  return (why, from) => {
    since[why] = (since[why] ?? 0) + 1;
    lastFrom = `${from.address}:${from.port}`;
    const now = clock();
    if (now - lastAtMs < REFUSAL_LOG_INTERVAL_MS) return;
    lastAtMs = now;
    logger.warn({ refused: since, lastFrom }, 'ring datagrams refused (bad key, forged, replayed or unsealed); more in the metrics');
    since = {};
  };
}

/** The security part of the daemon's status: seal counts (null: the ring is not sealed) and the node's refusals. */
export function securityStatusOf(
  sealer: RingSealer | null,
  seal: (SealStats & { rejectedUnsealed: number }) | null,
  refusals: { sessionsRejected: number; accessDenied: number },
): SecurityStatus {
  return {
    ringSealed: sealer !== null,
    ringKeyIds: sealer?.keyIds() ?? null,
    ringDatagramsRejected:
      seal === null
        ? {}
        : {
            unsealed: seal.rejectedUnsealed,
            malformed: seal.rejectedMalformed,
            'unknown-key': seal.rejectedUnknownKey,
            authentication: seal.rejectedAuthentication,
            replay: seal.rejectedReplay,
            'sender-mismatch': seal.rejectedSenderMismatch,
          },
    ...refusals,
  };
}
