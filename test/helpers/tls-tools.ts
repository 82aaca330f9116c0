/**
 * TLS test tools: a throw-away self-signed certificate made with the openssl
 * command, and `openssl s_client` runs that save or resume a session.
 */
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync } from 'node:fs';
import { join } from 'node:path';

export interface TestCertificate {
  certFile: string;
  keyFile: string;
}

/** A P-256 certificate for CN=localhost in `dir` (valid one day). */
export function makeTestCertificate(dir: string): TestCertificate {
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '1', '-subj', '/CN=localhost'],
    { stdio: 'pipe' },
  );
  chmodSync(keyFile, 0o600);
  return { certFile, keyFile };
}

export interface SClientOptions {
  /** host:port */
  connect: string;
  version: 'tls1_2' | 'tls1_3';
  /** Saves the session here (for TLS 1.3 after reading the reply, so the server's NewSessionTicket is in). */
  sessOut?: string;
  sessIn?: string;
}

/** Runs `openssl s_client` with a short HTTP/1.0 request and resolves with what it printed. */
export function sClient(options: SClientOptions): Promise<string> {
  const args = ['s_client', '-connect', options.connect, `-${options.version}`, '-servername', 'localhost', '-ign_eof'];
  if (options.sessOut !== undefined) args.push('-sess_out', options.sessOut);
  if (options.sessIn !== undefined) args.push('-sess_in', options.sessIn);
  return new Promise((resolve, reject) => {
    const child = spawn('openssl', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => (output += text));
    child.stderr.setEncoding('utf8').on('data', (text: string) => (output += text));
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('error', reject);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(output);
    });
    child.stdin.end('GET /index.html HTTP/1.0\r\nHost: localhost\r\n\r\n');
  });
}

/** s_client's summary line: "Reused, TLSv1.3, …" or "New, TLSv1.2, …". */
export function sessionLine(output: string): string {
  return /^(New|Reused), .*$/m.exec(output)?.[0] ?? `(no session line)\n${output}`;
}
