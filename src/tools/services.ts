/**
 * `tspread svc` (alias `service`): replicated services (MEAD-style).
 *   svc counter -g GROUP   runs one replica of the example counter service;
 *   svc call -g GROUP METHOD [JSON]   calls it and prints the JSON result;
 *   svc switch -g GROUP active|passive   switches the replication style.
 * A replica logs (pino JSON) to stdout; SIGUSR2 makes it retire (proactive
 * recovery), SIGTERM/SIGINT leave the group and exit.
 */
import { spawn } from 'node:child_process';
import { Command, InvalidArgumentError } from 'commander';
import { pino } from 'pino';
import { connect } from '../client/index.js';
import { counterHandlers, counterInitialState, serve, ServiceClient, ServiceError, STYLES, switchStyle, type Style } from '../apps/services/index.js';
import { integer } from './options.js';

interface DaemonOptions {
  group: string;
  spread: string;
  socketDir?: string;
}

interface CounterOptions extends DaemonOptions {
  style: Style;
  maxHeapMb?: number;
  maxLagMs?: number;
  respawn?: boolean;
  logLevel: string;
}

function style(text: string): Style {
  if (!STYLES.includes(text as Style)) throw new InvalidArgumentError(`expected one of ${STYLES.join(', ')}`);
  return text as Style;
}

function json(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new InvalidArgumentError('expected JSON, e.g. \'{"by":2}\'');
  }
}

const daemonOf = (options: DaemonOptions) => () => connect({ daemon: options.spread, unixSocketDir: options.socketDir });

function withDaemon(command: Command): Command {
  return command
    .requiredOption('-g, --group <group>', 'the service group')
    .option('-s, --spread <daemon>', 'Spread name of the local daemon: 4803 (Unix socket) or 4803@host', '4803')
    .option('--socket-dir <dir>', "directory of the daemon's Unix socket (default /tmp)");
}

function counterCommand(): Command {
  return withDaemon(new Command('counter').description('run one replica of the example replicated counter (methods: increment {"by":N}, get, echo)'))
    .option('--style <style>', 'replication style at start: active or passive (the group keeps its own once running)', style, 'active')
    .option('--max-heap-mb <mb>', 'retire (proactive recovery) when the heap in use passes this', integer(1, 1 << 20))
    .option('--max-lag-ms <ms>', 'retire when the event-loop delay p99 passes this', integer(1, 60_000))
    .option('--respawn', 'when retiring, start a fresh replica with the same arguments first')
    .option('--log-level <level>', 'log level: trace, debug, info, warn, error, fatal', 'info')
    .action((options: CounterOptions) => {
      const logger = pino({ level: options.logLevel, base: { pid: process.pid, tool: 'svc' } });
      const health = options.maxHeapMb === undefined && options.maxLagMs === undefined ? undefined : {
        maxHeapBytes: options.maxHeapMb === undefined ? undefined : options.maxHeapMb * 1048576,
        maxEventLoopDelayMs: options.maxLagMs,
      };
      const replace = options.respawn
        ? () => {
            const child = spawn(process.execPath, process.argv.slice(1), { stdio: 'inherit' });
            logger.info({ replacementPid: child.pid }, 'replacement started');
          }
        : undefined;
      const replica = serve(options.group, counterHandlers, { initialState: counterInitialState(), connect: daemonOf(options), style: options.style, logger, health, replace });
      let member: string | null = null;
      replica.on('synced', () => (member = replica.group.me));
      const report = () => ({ group: options.group, member, style: replica.core.style, state: replica.core.state, executions: replica.core.executions });
      replica.on('synced', () => logger.info(report(), 'in sync with the service group'));
      const exit = () => {
        logger.info(report(), 'stopped');
        logger.flush();
        process.exit(0);
      };
      replica.on('retired', exit);
      process.on('SIGUSR2', () => void replica.retire('asked by SIGUSR2'));
      const stop = async () => {
        await replica.stop();
        exit();
      };
      process.once('SIGTERM', () => void stop());
      process.once('SIGINT', () => void stop());
    });
}

function callCommand(): Command {
  return withDaemon(new Command('call').description('call METHOD with JSON arguments and print the JSON result'))
    .argument('<method>', 'method name')
    .argument('[json]', 'arguments as JSON', json, null)
    .option('--timeout <ms>', 'give up after this long', integer(1, 3_600_000), 10_000)
    .option('--majority', 'in active style, wait for replies from a majority of replicas')
    .action(async (method: string, args: unknown, options: DaemonOptions & { timeout: number; majority?: boolean }) => {
      let client: ServiceClient;
      try {
        client = await ServiceClient.open({ group: options.group, connect: daemonOf(options), timeoutMs: options.timeout });
      } catch (error) {
        process.stderr.write(`tspread svc call: cannot reach the daemon ${options.spread}: ${(error as Error).message}\n`);
        process.exit(1);
      }
      try {
        const result = await client.call(method, args, { replies: options.majority ? 'majority' : 'first' });
        process.stdout.write(`${JSON.stringify(result)}\n`);
        process.exitCode = 0;
      } catch (error) {
        const code = error instanceof ServiceError ? `${error.code}: ` : '';
        process.stderr.write(`tspread svc call: ${code}${(error as Error).message}\n`);
        process.exitCode = 1;
      }
      await client.close();
    });
}

function switchCommand(): Command {
  return withDaemon(new Command('switch').description('switch the service to another replication style, at one point of the total order'))
    .argument('<style>', 'active or passive', style)
    .action(async (target: Style, options: DaemonOptions) => {
      const session = await daemonOf(options)();
      switchStyle(session, options.group, target);
      await session.disconnect();
      process.stdout.write(`switch to ${target} sent to ${options.group}\n`);
    });
}

export function servicesCommand(): Command {
  return new Command('svc')
    .alias('service')
    .description('fault-tolerant replicated services: active or warm-passive replicas, style switch, proactive recovery (MEAD)')
    .addCommand(counterCommand())
    .addCommand(callCommand())
    .addCommand(switchCommand());
}
