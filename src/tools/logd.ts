/**
 * `tspread logd -c spreadlogd.conf`: the collector (spreadlogd). SIGHUP reopens
 * every file (logrotate's postrotate); SIGTERM/SIGINT write what is buffered and
 * exit 0. A configuration that cannot be read or parsed exits 1 with the reason.
 * Logs (pino JSON) to stdout, including a `view` line per membership change of a
 * log group and the gaps when its daemon was away.
 */
import { Command } from 'commander';
import { pino } from 'pino';
import { Collector, ConfigError, loadLogdConfig } from '../apps/logging/index.js';

interface LogdOptions {
  config: string;
  socketDir?: string;
  logLevel: string;
}

export function logdCommand(): Command {
  return new Command('logd')
    .description('collect log lines from Spread groups into files (spreadlogd), configured by spreadlogd.conf')
    .requiredOption('-c, --config <file>', 'spreadlogd configuration file')
    .option('--socket-dir <dir>', "directory of local daemons' Unix sockets (default /tmp)")
    .option('--log-level <level>', 'log level: trace, debug, info, warn, error, fatal', 'info')
    .action(async (options: LogdOptions) => {
      const logger = pino({ level: options.logLevel, base: { pid: process.pid, tool: 'logd' } });
      let collector: Collector;
      try {
        collector = new Collector(loadLogdConfig(options.config), { logger, unixSocketDir: options.socketDir });
      } catch (error) {
        if (!(error instanceof ConfigError)) throw error;
        process.stderr.write(`tspread logd: ${error.message}\n`);
        process.exit(1);
      }
      collector.start();
      process.on('SIGHUP', () => {
        collector.reopen();
        logger.info({ files: collector.files.length }, 'reopened files');
      });
      const stop = async () => {
        await collector.stop();
        const files = collector.files.map((file) => ({ file: file.path, written: file.linesWritten, dropped: file.linesDropped }));
        logger.info({ files }, 'stopped');
        logger.flush();
        process.exit(0);
      };
      process.once('SIGTERM', () => void stop());
      process.once('SIGINT', () => void stop());
    });
}
