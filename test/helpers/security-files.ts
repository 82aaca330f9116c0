/**
 * Throw-away security material for the security tests and benchmark: a CA, a daemon
 * certificate for 127.0.0.1/localhost, client certificates, ring key files and password
 * lines — made with the same openssl commands docs/security.md gives.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { passwordLine } from '../../src/security/passwords.js';

export interface TestPki {
  caFile: string;
  daemonCertFile: string;
  daemonKeyFile: string;
  /** A client certificate and key signed by the CA, for `cn`. */
  client(cn: string): { certFile: string; keyFile: string };
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: 'pipe' });
}

const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** A CA and a daemon certificate (SAN 127.0.0.1, `daemonAddresses`, localhost) in `dir`. */
export function makeTestPki(dir: string, daemonAddresses: string[] = []): TestPki {
  openssl(['req', '-x509', ...EC_KEY, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=tspread test CA'], dir);
  const sign = (name: string, subject: string, extensions: string[]) => {
    openssl(['req', ...EC_KEY, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject], dir);
    writeFileSync(join(dir, `${name}.ext`), extensions.join('\n') + '\n');
    openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.pem`, '-days', '1', '-extfile', `${name}.ext`], dir);
    return { certFile: join(dir, `${name}.pem`), keyFile: join(dir, `${name}.key`) };
  };
  const sans = ['IP:127.0.0.1', ...daemonAddresses.map((address) => `IP:${address}`), 'DNS:localhost'].join(',');
  const daemon = sign('daemon', '/CN=tspread daemon', [`subjectAltName=${sans}`, 'extendedKeyUsage=serverAuth']);
  return {
    caFile: join(dir, 'ca.pem'),
    daemonCertFile: daemon.certFile,
    daemonKeyFile: daemon.keyFile,
    client: (cn) => sign(`client-${cn.replace(/[^a-z0-9-]/gi, '_')}`, `/CN=${cn}`, ['extendedKeyUsage=clientAuth']),
  };
}

/** 32 random bytes as hex: one ring key. */
export function ringKeyHex(): string {
  return randomBytes(32).toString('hex');
}

/** Writes a ring key file: `lines` such as ['current 1 <hex>', 'next 2 <hex>']. */
export function writeRingKeys(path: string, lines: string[]): void {
  writeFileSync(path, lines.join('\n') + '\n', { mode: 0o600 });
}

/** Writes a password file for `users` (name → password). */
export function writePasswords(path: string, users: Record<string, string>): void {
  writeFileSync(path, Object.entries(users).map(([user, password]) => passwordLine(user, password)).join('\n') + '\n', { mode: 0o600 });
}
