/**
 * `tspread logd` and `tspread log-send` processes for the logging tests: writes a
 * spreadlogd.conf, waits for the collectors' views, reads and waits for their files.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLI, ToolProcess } from '../fake-daemon/processes.js';

export interface CollectorSpec {
  /** Client port of the daemon; `host` undefined = its Unix socket in `socketDir`. */
  port: number;
  host?: string;
  socketDir?: string;
  files: { group: string; file: string; match?: string }[];
}

export function collectorConfig(spec: CollectorSpec): string {
  const logs = spec.files.map(
    (log) => `  Log {\n    Group = ${log.group}\n    File = "${log.file}"\n${log.match ? `    Match = "${log.match}"\n` : ''}  }`,
  );
  const host = spec.host === undefined ? '' : `  Host = ${spec.host}\n`;
  return `# written by the test\nBufferSize = 65536\nSpread {\n  Port = ${spec.port}\n${host}${logs.join('\n')}\n}\n`;
}

/** Starts `tspread logd` with its configuration written to `<dir>/<name>.conf`. */
export function startCollector(dir: string, name: string, spec: CollectorSpec): ToolProcess {
  const configPath = join(dir, `${name}.conf`);
  writeFileSync(configPath, collectorConfig(spec));
  const args = ['logd', '-c', configPath];
  if (spec.socketDir !== undefined) args.push('--socket-dir', spec.socketDir);
  return new ToolProcess(args);
}

/** Resolves once the collector logged a view of `group` showing `collectors` collectors. */
export function waitForCollectors(collector: ToolProcess, group: string, collectors: number, timeoutMs = 20_000): Promise<string> {
  return collector.waitFor(new RegExp(`"group":"${group}"[^\\n]*"collectors":${collectors},"msg":"view"`), timeoutMs);
}

/** Stops a tool process with SIGTERM (SIGKILL after 5 s) and resolves with its exit code. */
export async function stopTool(tool: ToolProcess): Promise<number | null> {
  if (tool.child.exitCode === null && tool.child.signalCode === null) tool.child.kill('SIGTERM');
  const timer = setTimeout(() => tool.kill(), 5000);
  const code = await tool.exited;
  clearTimeout(timer);
  return code;
}

export function fileLines(path: string): string[] {
  if (!existsSync(path)) return [];
  const text = readFileSync(path, 'latin1');
  return text === '' ? [] : text.split('\n').slice(0, -1);
}

/** Polls `condition` (sync or async) every `pollMs` until it holds; throws with `describe` after the timeout. */
export async function waitUntil(
  condition: () => boolean | Promise<boolean>,
  describe: string | (() => string),
  timeoutMs = 20_000,
  pollMs = 50,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out: ${typeof describe === 'string' ? describe : describe()}`);
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}

/** The shell command of a `tspread log-send` for Apache's CustomLog pipe. */
export function logSendCommand(args: string[]): string {
  return [process.execPath, CLI, 'log-send', ...args].join(' ');
}

export const sorted = (lines: string[]): string[] => [...lines].sort();
