/** `tspread mq` end to end against a real daemon: send, consume, ask, reply --exec, and its errors. */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { freePort, soloConfig, startDaemon, type StartedDaemon } from './helpers/daemon.js';
import { ensureBuilt, ToolProcess } from './fake-daemon/processes.js';
import { waitUntil } from './helpers/log-collectors.js';

let daemon: StartedDaemon;
const tools: ToolProcess[] = [];

beforeAll(async () => {
  ensureBuilt();
  const port = await freePort();
  daemon = await startDaemon({ port, config: soloConfig(await freePort({ udp: ['127.0.0.1'] })) });
}, 60_000);

afterEach(async () => {
  for (const tool of tools.splice(0)) {
    tool.kill();
    await tool.exited;
  }
});

afterAll(async () => {
  await daemon?.stop();
});

function mq(...args: string[]): ToolProcess {
  const tool = new ToolProcess(['mq', ...args, '-s', `${daemon.port}@127.0.0.1`]);
  tools.push(tool);
  return tool;
}

async function ready(tool: ToolProcess, text: string): Promise<void> {
  await waitUntil(() => tool.stderr.includes(text), () => `not ready: ${tool.stderr}`);
}

describe('tspread mq', () => {
  it('has --help for each subcommand', async () => {
    const help = mq('--help');
    expect(await help.exited).toBe(0);
    for (const name of ['send', 'consume', 'ask', 'reply']) expect(help.stdout).toContain(name);
    const replyHelp = mq('reply', '--help');
    expect(await replyHelp.exited).toBe(0);
    expect(replyHelp.stdout).toContain('--exec <command>');
  });

  it('sends a body argument and stdin lines; consume prints one message per line', async () => {
    const consumer = mq('consume', 'cli-jobs', '-n', '4');
    await ready(consumer, 'consuming cli-jobs');
    expect(await mq('send', 'cli-jobs', 'first').exited).toBe(0);
    const lines = mq('send', 'cli-jobs');
    lines.child.stdin.end('second\nthird\n');
    expect(await lines.exited).toBe(0);
    expect(await mq('send', 'cli-jobs', '--json', '{"n":4}', '-H', 'kind=test').exited).toBe(0);
    expect(await consumer.exited).toBe(0);
    expect(consumer.stdout).toBe('first\nsecond\nthird\n{"n":4}\n');
  });

  it('ask prints the reply of reply --exec; no replier means exit 1 and a clear error', async () => {
    const replier = mq('reply', 'cli-rpc', '--exec', 'tr a-z A-Z');
    await ready(replier, 'replying on cli-rpc');
    const ask = mq('ask', 'cli-rpc', 'hello world');
    expect(await ask.exited).toBe(0);
    expect(ask.stdout).toBe('HELLO WORLD\n');
    const lonely = mq('ask', 'cli-nobody', 'anyone?', '--timeout', '300');
    expect(await lonely.exited).toBe(1);
    expect(lonely.stderr).toContain('tspread mq ask: no reply from queue "cli-nobody" within 300 ms');
  });

  it('refuses malformed bodies and bad names with clear errors', async () => {
    const badJson = mq('send', 'cli-jobs', '--json', '{bad');
    expect(await badJson.exited).toBe(1);
    expect(badJson.stderr).toContain('tspread mq send: the body is not valid JSON: {bad');
    const badName = mq('send', 'no#hash', 'x');
    expect(await badName.exited).toBe(1);
    expect(badName.stderr).toContain("queue name must have 1..28 printable ASCII characters without '#'");
    const noExec = mq('reply', 'cli-rpc');
    expect(await noExec.exited).not.toBe(0);
    expect(noExec.stderr).toContain("required option '--exec <command>' not specified");
  });
});
