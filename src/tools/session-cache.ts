/**
 * `tspread session-cache --listen 127.0.0.1:11211 -g GROUP [-s daemon]`: a
 * memcached-protocol cache on this host whose changes are replicated to every
 * member of GROUP (Splash). Point Apache at it with
 * `SSLSessionCache memcache:127.0.0.1:11211`. Logs (pino JSON) to stdout;
 * SIGTERM/SIGINT close the port and leave the group.
 */
import { Command, InvalidArgumentError } from 'commander';
import { pino } from 'pino';
import { connect } from '../client/index.js';
import { CacheServer, SharedMap } from '../apps/session-cache/index.js';

interface SessionCacheOptions {
  listen: string;
  group: string;
  spread: string;
  socketDir?: string;
  maxBytes: number;
  logLevel: string;
}

function parseListen(text: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(text);
  const port = Number(match?.[3]);
  if (match === null || port > 65535) throw new InvalidArgumentError('expected HOST:PORT, e.g. 127.0.0.1:11211');
  return { host: match[1] ?? match[2]!, port };
}

function parseBytes(text: string): number {
  const match = /^(\d+)([kmg]?)$/i.exec(text.trim());
  if (match === null) throw new InvalidArgumentError('expected a byte count such as 67108864, 64m or 1g');
  const scale = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[match[2]!.toLowerCase() as '' | 'k' | 'm' | 'g'];
  return Number(match[1]) * scale;
}

export function sessionCacheCommand(): Command {
  return new Command('session-cache')
    .description('memcached-protocol cache replicated over a Spread group, for TLS session caches of a web farm (Splash)')
    .requiredOption('-g, --group <group>', 'replication group shared by the farm')
    .option(
      '--listen <host:port>',
      'address for memcached clients (loopback by default: entries are secrets)',
      (text: string) => (parseListen(text), text),
      '127.0.0.1:11211',
    )
    .option('-s, --spread <daemon>', 'Spread name of the local daemon: 4803 (Unix socket) or 4803@host', '4803')
    .option('--socket-dir <dir>', "directory of the daemon's Unix socket (default /tmp)")
    .option('-m, --max-bytes <bytes>', 'memory cap for keys and values; least recently stored entries are evicted first', parseBytes, 64 * 1024 * 1024)
    .option('--log-level <level>', 'log level: trace, debug, info, warn, error, fatal', 'info')
    .action(async (options: SessionCacheOptions) => {
      const logger = pino({ level: options.logLevel, base: { pid: process.pid, tool: 'session-cache' } });
      const listen = parseListen(options.listen);
      const map = new SharedMap({
        group: options.group,
        limitBytes: options.maxBytes,
        logger,
        connect: () => connect({ daemon: options.spread, unixSocketDir: options.socketDir }),
      });
      map.replication.on('synced', () => logger.info({ group: options.group, entries: map.stats.entries }, 'in sync with the group'));
      const server = new CacheServer(map);
      try {
        const address = await server.listen(listen.port, listen.host);
        logger.info({ host: address.address, port: address.port, group: options.group, maxBytes: options.maxBytes }, 'session cache listening');
      } catch (error) {
        process.stderr.write(`tspread session-cache: cannot listen on ${options.listen}: ${(error as Error).message}\n`);
        process.exit(1);
      }
      const stop = async () => {
        await server.close();
        await map.stop();
        logger.info({ entries: map.stats.entries }, 'stopped');
        logger.flush();
        process.exit(0);
      };
      process.once('SIGTERM', () => void stop());
      process.once('SIGINT', () => void stop());
    });
}
