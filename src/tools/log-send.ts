/**
 * `tspread log-send -g GROUP`: multicasts the lines of stdin (Apache's
 * `CustomLog "|tspread log-send -g www" combined`) or, with `--syslog udp://…`,
 * the messages of syslog datagrams (nginx's `access_log syslog:server=…`).
 * Reads its input at all times, so a web server never blocks on it; see
 * LogSender for holding, re-sending and dropping. On EOF (or SIGTERM, which
 * Apache sends at shutdown) it sends what it holds and exits 0. Logs to stderr,
 * which Apache writes to its ErrorLog.
 */
import { fstatSync } from 'node:fs';
import { Command, InvalidArgumentError } from 'commander';
import { pino } from 'pino';
import { integer } from './options.js';
import type { Service } from '../client/index.js';
import { LineSplitter, listenSyslog, LogSender } from '../apps/logging/index.js';

interface LogSendOptions {
  group: string;
  server: string;
  service: Service;
  socketDir?: string;
  syslog?: string;
  bufferBytes: number;
  collectors: number;
  plain: boolean;
  lingerMs: number;
  logLevel: string;
}

const SERVICES: readonly Service[] = ['unreliable', 'reliable', 'fifo', 'causal', 'agreed', 'safe'];
/** Apache waits 3 s after SIGTERM before SIGKILL; finish within that. */
const SIGNAL_LINGER_MS = 2500;

export function logSendCommand(): Command {
  return new Command('log-send')
    .description('multicast log lines from stdin (or syslog datagrams) to a Spread group; for Apache piped logs and nginx syslog')
    .requiredOption('-g, --group <group>', 'group to send to (collectors: tspread logd)')
    .option('-s, --server <daemon>', 'daemon: 4803 (Unix socket) or 4803@host', '4803')
    .option('--service <service>', `Spread service: ${SERVICES.join(', ')}`, (value: string) => {
      if (!SERVICES.includes(value as Service)) throw new InvalidArgumentError(`expected one of ${SERVICES.join(', ')}`);
      return value as Service;
    }, 'agreed')
    .option('--socket-dir <dir>', "directory of the daemon's Unix socket (default /tmp)")
    .option('--syslog <url>', 'read syslog datagrams (RFC 3164/5424) on udp://host:port instead of stdin')
    .option('--buffer-bytes <n>', 'bytes held while the daemon is away before lines are dropped', integer(1024, 2 ** 31), 64 * 1024 * 1024)
    .option('--collectors <n>', 'send only while this many collectors are present (0: always)', integer(0, 1000), 1)
    .option('--plain', 'one line per message without batch header, as mod_log_spread sends (for other collectors)', false)
    .option('--linger-ms <ms>', 'at EOF, how long to wait for the daemon to take the last lines', integer(0, 3_600_000), 10_000)
    .option('--log-level <level>', 'log level: trace, debug, info, warn, error, fatal', 'info')
    .action(async (options: LogSendOptions) => {
      const logger = pino({ level: options.logLevel, base: { pid: process.pid, tool: 'log-send' } }, pino.destination(2));
      const sender = new LogSender({
        daemon: options.server,
        group: options.group,
        service: options.service,
        unixSocketDir: options.socketDir,
        bufferBytes: options.bufferBytes,
        collectors: options.collectors,
        plain: options.plain,
        logger,
      });
      sender.start();
      const splitter = new LineSplitter();
      const finished = options.syslog === undefined ? readStdin(sender, splitter, options.bufferBytes) : readSyslog(sender, splitter, options.syslog, logger);
      const lingerMs = await finished;
      const stats = await sender.close(Math.min(lingerMs, options.lingerMs));
      logger.info({ ...stats, truncatedLines: splitter.truncatedLines }, 'done');
      logger.flush();
      process.exit(0);
    });
}

/** Resolves at EOF or SIGTERM/SIGINT with how long to linger. */
function readStdin(sender: LogSender, splitter: LineSplitter, bufferBytes: number): Promise<number> {
  // A regular file can wait for the daemon; a pipe from a web server must never be blocked.
  const input = process.stdin;
  const canWait = isRegularFile(0);
  return new Promise((resolve) => {
    input.on('data', (chunk: Buffer) => {
      sender.write(splitter.push(chunk));
      if (canWait && sender.heldBytes > bufferBytes / 2) {
        input.pause();
        void sender.whenHeldBelow(bufferBytes / 4).then(() => input.resume());
      }
    });
    input.on('end', () => {
      sender.write(splitter.end());
      resolve(Number.POSITIVE_INFINITY);
    });
    input.on('error', () => resolve(Number.POSITIVE_INFINITY));
    onStopSignal(() => {
      input.pause();
      sender.write(splitter.end());
      resolve(SIGNAL_LINGER_MS);
    });
  });
}

async function readSyslog(sender: LogSender, splitter: LineSplitter, url: string, logger: pino.Logger): Promise<number> {
  let socket;
  try {
    socket = await listenSyslog(url, (run) => sender.write(run), splitter);
  } catch (error) {
    logger.fatal({ url, error: (error as Error).message }, 'cannot listen for syslog');
    return 0;
  }
  logger.info({ url }, 'listening for syslog');
  return new Promise((resolve) =>
    onStopSignal(() => {
      socket.close();
      resolve(SIGNAL_LINGER_MS);
    }),
  );
}

function onStopSignal(stop: () => void): void {
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

function isRegularFile(fd: number): boolean {
  try {
    return fstatSync(fd).isFile();
  } catch {
    return false;
  }
}
