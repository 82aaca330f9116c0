/**
 * `tspread daemon`: the Spread daemon (`spread` in Spread 5.0.1, §10.1).
 *   -c <file>            configuration file (default spread.conf, then ./spread.conf, /etc)
 *   -n <name>            which configured daemon this process is
 *   -p, --port <port>    client port instead of the segment port
 *   --unix-dir <dir>     directory of the Unix socket <dir>/<port> (default /tmp); 'none' disables it
 *   --state-dir <dir>    directory of the file keeping the ring identity across restarts
 *                        (default RuntimeDir, else the system's temporary directory); 'none' keeps nothing
 *   --log-level <level>  pino level (default info)
 *   --http <[host:]port> serve /status (JSON), /metrics (Prometheus) and the dashboard page (off by default)
 * Exits 0 on SIGINT/SIGTERM after closing listeners and removing the Unix socket; SIGHUP
 * re-reads the ring keys, password and access-control files (docs/security.md).
 */
import { Command, InvalidArgumentError } from 'commander';
import { integer } from './options.js';
import { pino } from 'pino';
import { DEFAULT_UNIX_SOCKET_DIR } from '../protocol/constants.js';
import { startDaemonProcess, type RunningDaemon } from '../daemon/daemon.js';
import { SLOW_READER_STALL_MS_DEFAULT } from '../daemon/server.js';
import { HANDSHAKE_DEADLINE_MS_DEFAULT } from '../daemon/handshake.js';
import { parseListenSpec } from '../management/http.js';

interface DaemonCommandOptions {
  c?: string;
  n?: string;
  port?: number;
  unixDir: string;
  stateDir?: string;
  logLevel: string;
  handshakeTimeoutMs: number;
  slowReaderStallMs: number;
  http?: { host: string; port: number };
}

export function daemonCommand(): Command {
  return new Command('daemon')
    .description('run a Spread daemon (wire-compatible with Spread 5.0.1 clients)')
    .option('-c <file>', 'configuration file')
    .option('-n <name>', 'name of this daemon in the configuration')
    .option('-p, --port <port>', 'client port (overrides the segment port)', integer(1, 65535))
    .option('--unix-dir <dir>', "directory of the Unix socket <dir>/<port> ('none' for no Unix socket)", DEFAULT_UNIX_SOCKET_DIR)
    .option(
      '--state-dir <dir>',
      "directory of the file that keeps this daemon's ring identity across restarts (default: RuntimeDir from spread.conf, else the system's temporary directory; 'none' keeps nothing)",
    )
    .option('--http <[host:]port>', 'serve /status, /metrics (Prometheus) and the dashboard; host defaults to 127.0.0.1', (text) => {
      try {
        return parseListenSpec(text);
      } catch (error) {
        throw new InvalidArgumentError((error as Error).message);
      }
    })
    .option('--log-level <level>', 'log level: trace, debug, info, warn, error, fatal', 'info')
    .option(
      '--handshake-timeout-ms <ms>',
      'deadline for a connecting client to finish its handshake',
      integer(1, 600_000),
      HANDSHAKE_DEADLINE_MS_DEFAULT,
    )
    .option(
      '--slow-reader-stall-ms <ms>',
      'cut a backlogged session that makes no progress for this long',
      integer(1, 600_000),
      SLOW_READER_STALL_MS_DEFAULT,
    )
    .action(async (options: DaemonCommandOptions) => {
      const logger = pino({ level: options.logLevel, base: { pid: process.pid } });
      let running: RunningDaemon | null = null;
      let stopping = false;
      const stop = (signal: string) => {
        if (stopping) return;
        stopping = true;
        logger.info({ signal }, 'daemon exiting');
        void (running ? running.stop() : Promise.resolve()).then(() => process.exit(0));
      };
      // Installed before the listeners open, so a signal right after 'daemon ready' is clean.
      process.on('SIGINT', () => stop('SIGINT'));
      process.on('SIGTERM', () => stop('SIGTERM'));
      // SIGHUP re-reads the ring keys, password and access-control files (docs/security.md).
      process.on('SIGHUP', () => running?.reloadSecurity('SIGHUP'));
      try {
        running = await startDaemonProcess({
          configPath: options.c,
          name: options.n,
          port: options.port,
          unixDir: options.unixDir === 'none' ? null : options.unixDir,
          stateDir: options.stateDir === 'none' ? null : options.stateDir,
          handshakeDeadlineMs: options.handshakeTimeoutMs,
          slowReaderStallMs: options.slowReaderStallMs,
          http: options.http,
          logger,
        });
      } catch (error) {
        logger.fatal({ error: error instanceof Error ? error.message : String(error) }, 'daemon could not start');
        process.exit(1);
      }
      if (stopping) await running.stop();
    });
}
