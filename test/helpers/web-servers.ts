/**
 * Real Apache httpd (Debian `apache2`) and nginx for tests: each runs in the
 * foreground from its own configuration in a temporary directory, on a loopback
 * port, with its own pid file, error log and temp paths, and is stopped by pid.
 * Workers run as www-data (the tests run as root), so the document root is made
 * world-readable. Both also write `<dir>/access.log` in the combined format, the
 * reference the tests compare the collectors' files with. Apache can also serve
 * TLS (mod_ssl) with its session cache in memcached (mod_socache_memcache).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { connect as connectTcp } from 'node:net';
import { join } from 'node:path';

export const APACHE_BINARY = '/usr/sbin/apache2';
export const NGINX_BINARY = '/usr/sbin/nginx';
const APACHE_MODULES = '/usr/lib/apache2/modules';

export interface WebServer {
  port: number;
  dir: string;
  process: ChildProcess;
  /** The reference access log's lines so far. */
  accessLines(): string[];
  errorLog(): string;
  stop(): Promise<void>;
}

function scratchDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(dir, 0o755);
  mkdirSync(join(dir, 'htdocs'));
  writeFileSync(join(dir, 'htdocs', 'index.html'), '<p>hello from the farm</p>\n');
  chmodSync(join(dir, 'htdocs'), 0o755);
  return dir;
}

function readLines(path: string): string[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'latin1').split('\n').slice(0, -1);
}

/** A TCP connection is accepted (for TLS listeners, where a plain HTTP probe would fail). */
function acceptsConnections(host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connectTcp({ host, port }, () => {
      socket.destroy();
      resolve();
    });
    socket.once('error', reject);
  });
}

async function waitForPort(port: number, child: ChildProcess, what: () => string, tlsHost?: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`web server exited at start:\n${what()}`);
    try {
      if (tlsHost !== undefined) await acceptsConnections(tlsHost, port);
      else await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(1000) });
      return;
    } catch {
      if (Date.now() > deadline) throw new Error(`web server not answering on ${port}:\n${what()}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

function started(port: number, dir: string, child: ChildProcess, output: () => string, errorLogPath: string): WebServer {
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let stopping: Promise<void> | null = null;
  return {
    port,
    dir,
    process: child,
    accessLines: () => readLines(join(dir, 'access.log')),
    errorLog: () => (existsSync(errorLogPath) ? readFileSync(errorLogPath, 'utf8') : '') + output(),
    stop() {
      stopping ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 8000);
        await exited;
        clearTimeout(timer);
        rmSync(dir, { recursive: true, force: true });
      })();
      return stopping;
    },
  };
}

function collectOutput(child: ChildProcess): () => string {
  let output = '';
  child.stdout?.setEncoding('utf8').on('data', (text: string) => (output += text));
  child.stderr?.setEncoding('utf8').on('data', (text: string) => (output += text));
  return () => output;
}

/** Starts a server in the foreground and resolves once it answers HTTP (stopped and removed if it never does). */
async function launch(port: number, dir: string, binary: string, args: string[], tlsHost?: string): Promise<WebServer> {
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const server = started(port, dir, child, collectOutput(child), join(dir, 'error.log'));
  try {
    await waitForPort(port, child, () => server.errorLog(), tlsHost);
  } catch (error) {
    await server.stop();
    throw error;
  }
  return server;
}

/** TLS for startApache: mod_ssl with a shared session cache, sessions by ID only. */
export interface ApacheTls {
  certFile: string;
  keyFile: string;
  /** SSLSessionCache's argument, e.g. `memcache:127.0.0.1:11211` (mod_socache_memcache). */
  sessionCache: string;
  /** SSLSessionTickets (default off: TLS 1.3 then resumes from the cache too). */
  sessionTickets?: boolean;
}

export interface ApacheOptions {
  port: number;
  /** Listening address (default 127.0.0.1); farms share a port on 127.0.0.1, .2, … so mod_ssl's session context matches. */
  address?: string;
  /** `CustomLog "|<pipedLogger>" combined`, besides the reference <dir>/access.log. */
  pipedLogger?: string;
  tls?: ApacheTls;
}

function apacheTlsLines(tls: ApacheTls): string[] {
  return [
    `LoadModule socache_memcache_module ${APACHE_MODULES}/mod_socache_memcache.so`,
    `LoadModule ssl_module ${APACHE_MODULES}/mod_ssl.so`,
    'SSLEngine on',
    'SSLProtocol -all +TLSv1.2 +TLSv1.3',
    `SSLCertificateFile ${tls.certFile}`,
    `SSLCertificateKeyFile ${tls.keyFile}`,
    `SSLSessionCache ${tls.sessionCache}`,
    'SSLSessionCacheTimeout 300',
    `SSLSessionTickets ${tls.sessionTickets ? 'on' : 'off'}`,
  ];
}

/** Apache serving <dir>/htdocs, optionally over TLS, with a reference CustomLog to <dir>/access.log. */
export async function startApache(options: ApacheOptions): Promise<WebServer> {
  const dir = scratchDir('tspread-apache-');
  const address = options.address ?? '127.0.0.1';
  const config = [
    `ServerRoot ${dir}`,
    'ServerName localhost',
    `Listen ${address}:${options.port}${options.tls ? ' https' : ''}`,
    `PidFile ${dir}/httpd.pid`,
    `ErrorLog ${dir}/error.log`,
    `DefaultRuntimeDir ${dir}`,
    `Mutex file:${dir} default`,
    `LoadModule mpm_event_module ${APACHE_MODULES}/mod_mpm_event.so`,
    `LoadModule authz_core_module ${APACHE_MODULES}/mod_authz_core.so`,
    ...(options.tls ? apacheTlsLines(options.tls) : []),
    'User www-data',
    'Group www-data',
    'KeepAlive Off',
    `DocumentRoot ${dir}/htdocs`,
    `<Directory ${dir}/htdocs>`,
    '  Require all granted',
    '</Directory>',
    'LogFormat "%h %l %u %t \\"%r\\" %>s %b \\"%{Referer}i\\" \\"%{User-agent}i\\"" combined',
    ...(options.pipedLogger ? [`CustomLog "|${options.pipedLogger}" combined`] : []),
    `CustomLog ${dir}/access.log combined`,
    '',
  ].join('\n');
  writeFileSync(join(dir, 'httpd.conf'), config);
  const args = ['-d', dir, '-f', join(dir, 'httpd.conf'), '-DFOREGROUND'];
  return launch(options.port, dir, APACHE_BINARY, args, options.tls ? address : undefined);
}

/** nginx logging to syslog on `syslogPort` (tag www) and to the reference <dir>/access.log. */
export async function startNginx(options: { port: number; syslogPort: number }): Promise<WebServer> {
  const dir = scratchDir('tspread-nginx-');
  const temp = join(dir, 'temp');
  mkdirSync(temp);
  const config = [
    'worker_processes 1;',
    'user www-data www-data;',
    `pid ${dir}/nginx.pid;`,
    `error_log ${dir}/error.log;`,
    'events { worker_connections 256; }',
    'http {',
    ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((kind) => `  ${kind}_temp_path ${temp}/${kind};`),
    '  keepalive_timeout 0;',
    `  access_log syslog:server=127.0.0.1:${options.syslogPort},tag=www combined;`,
    `  access_log ${dir}/access.log combined;`,
    `  server { listen 127.0.0.1:${options.port}; root ${dir}/htdocs; }`,
    '}',
    '',
  ].join('\n');
  writeFileSync(join(dir, 'nginx.conf'), config);
  return launch(options.port, dir, NGINX_BINARY, ['-e', join(dir, 'error.log'), '-p', dir, '-c', join(dir, 'nginx.conf'), '-g', 'daemon off;']);
}

/** Runs ApacheBench: `requests` GETs of `path`, `concurrency` at a time; resolves with its failed-request count. */
export function runAb(port: number, requests: number, concurrency = 4, path = '/index.html'): Promise<{ failed: number; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('ab', ['-q', '-n', String(requests), '-c', String(concurrency), `http://127.0.0.1:${port}${path}`], { stdio: ['ignore', 'pipe', 'pipe'] });
    const output = collectOutput(child);
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      const text = output();
      const complete = /Complete requests:\s+(\d+)/.exec(text);
      const failed = /Failed requests:\s+(\d+)/.exec(text);
      if (code !== 0 || complete === null || failed === null) reject(new Error(`ab exited with ${code}:\n${text}`));
      else resolve({ failed: Number(failed[1]) + requests - Number(complete[1]), output: text });
    });
  });
}
