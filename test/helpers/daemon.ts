/**
 * Start a real `tspread daemon` process for tests (built output: `npm test` builds first).
 *
 *   const daemon = await startDaemon({ port: 24810 });
 *   ... connect to `${daemon.port}@127.0.0.1` or daemon.unixPath ...
 *   await daemon.stop();
 *
 * Each daemon gets its own temporary Unix-socket directory unless `unixDir` is given, and
 * its own temporary spread.conf when `config` text is given. `stop()` sends SIGTERM,
 * waits for the exit (SIGKILL after 5 s) and removes the temporary files.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import net from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const HELPERS_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** The repository, whether this runs from test/helpers (vitest) or dist/test/helpers (compiled benches). */
const REPO_ROOT = basename(HELPERS_ROOT) === 'dist' ? dirname(HELPERS_ROOT) : HELPERS_ROOT;
export const CLI_PATH = join(REPO_ROOT, 'dist', 'src', 'tools', 'cli.js');

export interface StartDaemonOptions {
  port: number;
  /** Directory for the Unix socket `<dir>/<port>`; default: a fresh temporary directory. */
  unixDir?: string;
  /** spread.conf text; written to a temporary file and passed with -c. */
  config?: string;
  /** Extra command-line arguments (e.g. ['-n', 'd1', '--log-level', 'debug']). */
  args?: string[];
  /** How long to wait for the ready line. */
  startTimeoutMs?: number;
  /** Node options before the script (e.g. ['--cpu-prof', '--cpu-prof-dir', dir]). */
  nodeArgs?: string[];
  /** Environment variables added to the daemon's (e.g. TSPREAD_NATIVE_SEAL=off). */
  env?: NodeJS.ProcessEnv;
}

export interface StartedDaemon {
  port: number;
  unixPath: string;
  process: ChildProcess;
  /** Everything the daemon printed so far (stdout + stderr). */
  output(): string;
  /** Resolves once the output contains `text`; rejects after `timeoutMs`. */
  waitForOutput(text: string, timeoutMs?: number): Promise<void>;
  /** Resolves with the exit code (null when killed by a signal). */
  stop(): Promise<number | null>;
}

function tcpFree(port: number): Promise<boolean> {
  return new Promise((resolvePort) => {
    const server = net.createServer();
    server.once('error', () => resolvePort(false));
    server.listen({ port, host: '0.0.0.0', exclusive: true }, () => server.close(() => resolvePort(true)));
  });
}

function udpFree(port: number, address: string): Promise<boolean> {
  return new Promise((resolvePort) => {
    const socket = dgram.createSocket('udp4');
    socket.once('error', () => {
      socket.close();
      resolvePort(false);
    });
    socket.bind(port, address, () => socket.close(() => resolvePort(true)));
  });
}

const handedOut = new Set<number>();

/**
 * A port in [from, to] that is free right now for TCP (and, with `udp`, for UDP on those
 * addresses at port and port + 1, as a ring needs). Other test runs may share the machine
 * (several engineers run `npm test`), so fixed ports collide; this picks at random and
 * never hands the same port out twice in one process. Daemon tests use 24800–24899.
 */
export async function freePort(options: { from?: number; to?: number; udp?: string[] } = {}): Promise<number> {
  const from = options.from ?? 24800;
  const to = options.to ?? 24899;
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = from + Math.floor(Math.random() * (to - from + 1));
    if (handedOut.has(port) || (options.udp && (handedOut.has(port + 1) || port + 1 > to))) continue;
    if (!(await tcpFree(port))) continue;
    let ok = true;
    for (const address of options.udp ?? []) {
      if (!(await udpFree(port, address)) || !(await udpFree(port + 1, address))) ok = false;
    }
    if (!ok) continue;
    handedOut.add(port);
    if (options.udp) handedOut.add(port + 1);
    return port;
  }
  throw new Error(`no free port in ${from}..${to}`);
}

/** A one-daemon spread.conf for `localhost` on `port`, plus extra parameter lines. */
export function soloConfig(port: number, extraLines: string[] = []): string {
  return [`Spread_Segment 127.0.0.255:${port} {`, '\tlocalhost 127.0.0.1', '}', ...extraLines, ''].join('\n');
}

export async function startDaemon(options: StartDaemonOptions): Promise<StartedDaemon> {
  const scratch = mkdtempSync(join(tmpdir(), 'tspread-daemon-'));
  const unixDir = options.unixDir ?? scratch;
  const args = [...(options.nodeArgs ?? []), CLI_PATH, 'daemon', '-p', String(options.port), '--unix-dir', unixDir, '--state-dir', scratch];
  if (options.config !== undefined) {
    const configPath = join(scratch, 'spread.conf');
    writeFileSync(configPath, options.config);
    args.push('-c', configPath);
  }
  args.push(...(options.args ?? []));
  const child = spawn(process.execPath, args, { cwd: scratch, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...options.env } });
  let output = '';
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stdout.on('data', (text: string) => (output += text));
  child.stderr.on('data', (text: string) => (output += text));
  const exited = new Promise<number | null>((resolveExit) => child.once('exit', (code) => resolveExit(code)));

  const cleanup = () => rmSync(scratch, { recursive: true, force: true });
  try {
    await new Promise<void>((resolveReady, rejectReady) => {
      const timer = setTimeout(
        () => rejectReady(new Error(`daemon on port ${options.port} not ready in time:\n${output}`)),
        options.startTimeoutMs ?? 20_000,
      );
      const onData = () => {
        if (output.includes('"msg":"daemon ready"')) {
          clearTimeout(timer);
          child.stdout.off('data', onData);
          resolveReady();
        }
      };
      child.stdout.on('data', onData);
      void exited.then((code) => {
        clearTimeout(timer);
        rejectReady(new Error(`daemon on port ${options.port} exited with ${code}:\n${output}`));
      });
    });
  } catch (error) {
    child.kill('SIGKILL');
    cleanup();
    throw error;
  }

  let stopping: Promise<number | null> | null = null;
  return {
    port: options.port,
    unixPath: join(unixDir, String(options.port)),
    process: child,
    output: () => output,
    async waitForOutput(text, timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      while (!output.includes(text)) {
        if (Date.now() > deadline) throw new Error(`daemon output lacks '${text}':\n${output}`);
        await new Promise((resolveWait) => setTimeout(resolveWait, 20));
      }
    },
    stop() {
      stopping ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        const code = await exited;
        clearTimeout(timer);
        cleanup();
        return code;
      })();
      return stopping;
    },
  };
}

/**
 * Spread's LAN membership timeouts as spread.conf lines (tspread's defaults are shorter): for
 * tests and benchmarks about traffic, so that a daemon stalled by a loaded 2-vCPU host is not
 * taken for a crash in the middle of them.
 */
export const SPREAD_LAN_TIMEOUTS = [
  'TokenTimeout = 1250', 'HurryTimeout = 500', 'AliveTimeout = 250', 'JoinTimeout = 250', 'RepTimeout = 625',
  'SegTimeout = 500', 'GatherTimeout = 1250', 'FormTimeout = 1250', 'LookupTimeout = 30000',
];

/** Loopback address of daemon `index` (0-based) in a one-host ring: 127.0.0.1, .2, .3 … */
export const ringAddress = (index: number): string => `127.0.0.${index + 1}`;

/**
 * A spread.conf for `count` daemons d1, d2, … on 127.0.0.1, .2, … sharing segment port P
 * (the data port; tokens use P + 1), plus extra parameter lines before the segment.
 */
export function ringConfig(segmentPort: number, count: number, extraLines: string[] = []): string {
  const daemons = Array.from({ length: count }, (_, index) => `\td${index + 1} ${ringAddress(index)}`);
  return [...extraLines, `Spread_Segment 127.0.0.255:${segmentPort} {`, ...daemons, '}', ''].join('\n');
}

export interface StartRingOptions {
  /** Number of daemons (default 3). */
  count?: number;
  /** Parameter lines for the shared spread.conf (e.g. 'AcceleratedRing = true'). */
  extraLines?: string[];
  /** Per-daemon spread.conf text instead of the shared one (index → text), e.g. a different hash. */
  configFor?: (index: number, shared: string) => string;
  /** Extra arguments per daemon (index → args), after `-n dN`. */
  argsFor?: (index: number) => string[];
  startTimeoutMs?: number;
  /** Node options for every daemon process (see StartDaemonOptions.nodeArgs). */
  nodeArgs?: string[];
  /** Extra environment per daemon (index → variables). */
  envFor?: (index: number) => NodeJS.ProcessEnv;
}

export interface StartedRing {
  /** Segment (ring data) port P; tokens use P + 1. */
  segmentPort: number;
  /** The shared configuration text; also written to `configPath` for tools such as `tspread monitor -c`. */
  config: string;
  configPath: string;
  /** d1, d2, … in configuration order; each has its own client port and Unix socket directory. */
  daemons: StartedDaemon[];
  stop(): Promise<void>;
}

/**
 * `count` real daemons on 127.0.0.1, .2, … forming one ring on a free port pair P/P+1
 * (checked on every address). Clients reach daemon i at `${daemons[i].port}@127.0.0.1`
 * (TCP on all addresses) or its Unix socket `daemons[i].unixPath`. Resolves once every
 * daemon printed 'daemon ready' (the ring itself may still be forming).
 */
export async function startRing(options: StartRingOptions = {}): Promise<StartedRing> {
  const count = options.count ?? 3;
  const addresses = Array.from({ length: count }, (_, index) => ringAddress(index));
  const segmentPort = await freePort({ udp: addresses });
  const config = ringConfig(segmentPort, count, options.extraLines);
  const scratch = mkdtempSync(join(tmpdir(), 'tspread-ring-'));
  const configPath = join(scratch, 'spread.conf');
  writeFileSync(configPath, config);
  const clientPorts: number[] = [];
  for (let index = 0; index < count; index++) clientPorts.push(await freePort());
  const started = await Promise.allSettled(
    clientPorts.map((port, index) =>
      startDaemon({
        port,
        config: options.configFor ? options.configFor(index, config) : config,
        args: ['-n', `d${index + 1}`, ...(options.argsFor?.(index) ?? [])],
        startTimeoutMs: options.startTimeoutMs,
        nodeArgs: options.nodeArgs,
        env: options.envFor?.(index),
      }),
    ),
  );
  const daemons = started.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
  // stop() reads ring.daemons when called: a test that restarts daemons puts the new ones there.
  const ring: StartedRing = {
    segmentPort,
    config,
    configPath,
    daemons,
    async stop() {
      await Promise.all(ring.daemons.map((daemon) => daemon.stop()));
      rmSync(scratch, { recursive: true, force: true });
    },
  };
  const failed = started.find((result): result is PromiseRejectedResult => result.status === 'rejected');
  if (failed) {
    await ring.stop();
    throw failed.reason;
  }
  return ring;
}
