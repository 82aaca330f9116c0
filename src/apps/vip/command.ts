/**
 * `tspread vip`: virtual-IP fail-over for a cluster (wackamole on tspread's client API).
 *
 *   tspread vip -c vip.conf [--socket-dir DIR]      run this host's instance
 *   tspread vip --status [--json]                   who holds what, per host
 *   tspread vip --release ADDRESS                   this host gives the address up
 *   tspread vip --prefer ADDRESS                    this host takes the address (and keeps preferring it)
 *
 * The control requests reach the running instance over its Control socket: `-c` names the
 * file that says where it is, `--control` names it directly, else the default.
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { Command } from 'commander';
import { pino } from 'pino';
import { VipAgent } from './agent.js';
import { parseVipConfig, VIP_DEFAULTS, VipConfigError, type VipConfig } from './config.js';
import { formatStatus, requestControl, serveControl, type ControlRequest } from './control.js';

interface VipCommandOptions {
  config?: string;
  socketDir?: string;
  control?: string;
  ip: string;
  arping: string;
  metrics?: string;
  status?: boolean;
  release?: string;
  prefer?: string;
  json?: boolean;
  logLevel: string;
}

function loadConfig(file: string): VipConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new Error(`cannot read ${file}: ${(error as Error).message}`);
  }
  return parseVipConfig(text, file);
}

function serveMetrics(agent: VipAgent, where: string): http.Server {
  const [host, port] = where.includes(':') ? [where.slice(0, where.lastIndexOf(':')), where.slice(where.lastIndexOf(':') + 1)] : ['0.0.0.0', where];
  const server = http.createServer((request, response) => {
    if (request.url !== '/metrics') {
      response.writeHead(404).end();
      return;
    }
    void agent.metrics.registry.metrics().then((text) => response.writeHead(200, { 'content-type': agent.metrics.registry.contentType }).end(text));
  });
  server.listen(Number(port), host);
  return server;
}

async function control(path: string, request: ControlRequest, json: boolean): Promise<void> {
  const reply = await requestControl(path, request);
  if (!reply.ok) throw new Error(reply.error);
  if (json) process.stdout.write(`${JSON.stringify(reply.status, null, 2)}\n`);
  else if (request.command === 'status') process.stdout.write(`${formatStatus(reply.status)}\n`);
  else process.stdout.write(`${request.command} ${request.address}: sent to the group\n`);
}

async function run(options: VipCommandOptions): Promise<void> {
  const config = options.config === undefined ? null : loadConfig(options.config);
  const controlPath = options.control ?? config?.control ?? VIP_DEFAULTS.control;
  const json = options.json === true;
  if (options.status === true) return control(controlPath, { command: 'status' }, json);
  if (options.release !== undefined) return control(controlPath, { command: 'release', address: options.release }, json);
  if (options.prefer !== undefined) return control(controlPath, { command: 'prefer', address: options.prefer }, json);
  if (config === null) throw new Error('running an instance needs its configuration: tspread vip -c vip.conf');

  const logger = pino({ level: options.logLevel, base: { pid: process.pid } });
  const agent = new VipAgent({
    config,
    socketDir: options.socketDir,
    commands: { ip: options.ip, arping: options.arping === 'none' ? null : options.arping },
    logger,
  });
  let controlServer;
  try {
    controlServer = await serveControl(agent, controlPath);
  } catch (error) {
    await agent.stop();
    throw error;
  }
  const metricsServer = options.metrics === undefined ? null : serveMetrics(agent, options.metrics);
  agent.start();
  logger.info({ group: config.group, interfaces: config.interfaces.map((vif) => vif.id), control: controlPath }, 'vip started');
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await agent.stop();
    controlServer.close();
    metricsServer?.close();
    logger.info({}, 'vip stopped: every address released');
    process.exit(0);
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());
}

export function vipCommand(): Command {
  return new Command('vip')
    .description('virtual-IP fail-over for a cluster (wackamole): every virtual address held by exactly one working host, balanced')
    .option('-c, --config <file>', 'vip.conf (wackamole-style directives, see docs/vip.md); needed to run an instance')
    .option('--socket-dir <dir>', 'directory of the Spread daemon\'s Unix socket (default /tmp)')
    .option('--control <path>', 'control socket (default: the Control directive, else /run/tspread-vip.sock)')
    .option('--ip <program>', 'the iproute2 `ip` program', 'ip')
    .option('--arping <program>', 'the iputils `arping` program, or "none"', 'arping')
    .option('--metrics <[host:]port>', 'serve Prometheus metrics on http://host:port/metrics')
    .option('--status', 'show who holds which address, per host, and exit')
    .option('--release <address>', 'make this host give up a virtual address, and exit')
    .option('--prefer <address>', 'make this host take and prefer a virtual address, and exit')
    .option('--json', 'with --status/--release/--prefer: print the status as JSON')
    .option('--log-level <level>', 'pino log level', 'info')
    .action(async (options: VipCommandOptions) => {
      try {
        await run(options);
      } catch (error) {
        process.stderr.write(`tspread vip: ${(error as Error).message}\n`);
        process.exitCode = error instanceof VipConfigError ? 2 : 1;
      }
    });
}
