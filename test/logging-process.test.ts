// log-send and logd as processes against a real daemon: bad input, bad configuration,
// the buffer bound during an outage, EOF without a daemon, the accessLog middleware.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type Session } from '../src/client/index.js';
import { accessLog } from '../src/apps/logging/index.js';
import { freePort, soloConfig, startDaemon, type StartedDaemon } from './helpers/daemon.js';
import { ensureBuilt, ToolProcess } from './fake-daemon/processes.js';
import { fileLines, startCollector, stopTool, waitForCollectors, waitUntil } from './helpers/log-collectors.js';

const droppedIn = (log: string) => [...log.matchAll(/"droppedLines":(\d+)/g)].reduce((sum, match) => sum + Number(match[1]), 0);

describe('tspread log-send and logd processes', () => {
  let daemon: StartedDaemon;
  let dir: string;
  const started: ToolProcess[] = [];
  const tool = (args: string[]) => {
    const process = new ToolProcess(args);
    started.push(process);
    return process;
  };

  beforeAll(async () => {
    ensureBuilt();
    const port = await freePort();
    daemon = await startDaemon({ port, config: soloConfig(port) });
    dir = mkdtempSync(join(tmpdir(), 'tspread-logs-'));
  });

  afterAll(async () => {
    await Promise.all(started.map(stopTool));
    await daemon?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('over-long lines are truncated with a marker, binary junk passes, an unopenable file is reported and the rest flows', async () => {
    const good = join(dir, 'good.log');
    const collector = started[started.push(
      startCollector(dir, 'bad-input', {
        port: daemon.port,
        socketDir: dirname(daemon.unixPath),
        files: [
          { group: 'junk', file: good },
          { group: 'junk', file: '/nonexistent-tspread-dir/x.log' },
        ],
      }),
    ) - 1];
    await waitForCollectors(collector, 'junk', 1);
    expect(collector.stdout).toContain("cannot open log file: its lines are dropped until a reopen (SIGHUP) succeeds");
    expect(collector.stdout).toContain('/nonexistent-tspread-dir/x.log');

    const junk = Buffer.from(Array.from({ length: 300 }, (_, index) => index % 256).filter((byte) => byte !== 0x0a));
    const sender = tool(['log-send', '-g', 'junk', '-s', String(daemon.port), '--socket-dir', dirname(daemon.unixPath)]);
    sender.child.stdin.write('first line\n');
    sender.child.stdin.write(Buffer.concat([Buffer.alloc(200_000, 'x'), Buffer.from('\n'), junk, Buffer.from('\nlast line without newline')]));
    sender.child.stdin.end();
    expect(await sender.exited).toBe(0);
    expect(sender.stderr).toMatch(/"linesDropped":0,.*"truncatedLines":1,"msg":"done"/);

    await waitUntil(() => fileLines(good).length >= 4, () => collector.stdout);
    const written = readFileSync(good);
    const expected = Buffer.concat([
      Buffer.from('first line\n'),
      Buffer.alloc(65_536, 'x'),
      Buffer.from(` [tspread: truncated ${200_000 - 65_536} bytes]\n`),
      junk,
      Buffer.from('\nlast line without newline\n'),
    ]);
    expect(written.equals(expected)).toBe(true);

    collector.child.kill('SIGHUP');
    await collector.waitFor('"msg":"reopened files"');
    // Still unopenable: reported again with what it has dropped meanwhile.
    expect(collector.stdout).toMatch(/"file":"\/nonexistent-tspread-dir\/x.log","error":"ENOENT[^\n]*"droppedLines":4,/);
  });

  it('logd exits 1 with the reason for a configuration it cannot read or parse', async () => {
    const missing = tool(['logd', '-c', join(dir, 'no-such.conf')]);
    expect(await missing.exited).toBe(1);
    expect(missing.stderr).toMatch(/tspread logd: cannot read .*no-such\.conf: ENOENT/);
    const broken = startCollector(dir, 'broken', { port: daemon.port, files: [{ group: 'www', file: join(dir, 'x.log'), match: '(' }] });
    started.push(broken);
    expect(await broken.exited).toBe(1);
    expect(broken.stderr).toMatch(/tspread logd: .*broken\.conf:\d+: Match: Invalid regular expression/);
  });

  it('holds lines while the daemon is away up to --buffer-bytes, counts what it drops, sends the rest once the daemon is up', async () => {
    const port = await freePort();
    const socketDir = mkdtempSync(join(dir, 'late-'));
    const sender = tool(['log-send', '-g', 'late', '-s', String(port), '--socket-dir', socketDir, '--buffer-bytes', '2048']);
    const lines = Array.from({ length: 100 }, (_, index) => `line ${String(index).padStart(3, '0')} ${'y'.repeat(90)}`);
    for (const line of lines) sender.child.stdin.write(line + '\n');
    await waitUntil(() => sender.stderr.includes('buffer full: dropping lines'), () => sender.stderr);

    const late = await startDaemon({ port, config: soloConfig(port), unixDir: socketDir });
    try {
      const file = join(dir, 'late.log');
      const collector = startCollector(dir, 'late', { port, socketDir, files: [{ group: 'late', file }] });
      started.push(collector);
      await waitForCollectors(collector, 'late', 1);
      sender.child.stdin.write('after the outage\n');
      sender.child.stdin.end();
      expect(await sender.exited).toBe(0);
      await waitUntil(() => fileLines(file).includes('after the outage'), () => sender.stderr);
      const received = fileLines(file);
      // What was held arrives in order; the rest is counted, not lost silently.
      expect(received.length - 1 + droppedIn(sender.stderr)).toBe(100);
      expect(received.slice(0, -1)).toEqual(lines.slice(0, received.length - 1));
      expect(droppedIn(sender.stderr)).toBeGreaterThan(50);
      await stopTool(collector);
    } finally {
      await late.stop();
    }
  });

  it('at EOF without a daemon it waits --linger-ms, reports the lines as dropped and exits 0', async () => {
    const sender = tool(['log-send', '-g', 'www', '-s', String(await freePort()), '--socket-dir', dir, '--linger-ms', '300']);
    sender.send('one', 'two', 'three');
    sender.child.stdin.end();
    expect(await sender.exited).toBe(0);
    expect(sender.stderr).toContain('exiting with lines the daemon never confirmed');
    expect(droppedIn(sender.stderr)).toBe(3);
  });

  it('accessLog middleware writes the combined format Apache writes, through a collector', async () => {
    const file = join(dir, 'node.log');
    const collector = startCollector(dir, 'node', { port: daemon.port, host: '127.0.0.1', files: [{ group: 'node', file }] });
    started.push(collector);
    await waitForCollectors(collector, 'node', 1);
    const session: Session = await connect({ daemon: `${daemon.port}@127.0.0.1` });
    const log = accessLog({ session, group: 'node', format: 'combined' });
    let nextCalls = 0;
    const server = http.createServer((req, res) => {
      log(req, res, () => nextCalls++); // Express-style: calls next()
      res.statusCode = req.url === '/missing' ? 404 : 200;
      res.end(req.url === '/missing' ? '' : 'hello world');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    try {
      for (let index = 0; index < 20; index++) await (await fetch(`http://127.0.0.1:${port}/page/${index}`)).text();
      await (await fetch(`http://127.0.0.1:${port}/missing`, { headers: { referer: 'http://x/"q"', authorization: `Basic ${Buffer.from('bob:pw').toString('base64')}` } })).text();
      await waitUntil(() => fileLines(file).length >= 21, () => collector.stdout);
      const lines = fileLines(file);
      expect(lines).toHaveLength(21);
      expect(lines[0]).toMatch(/^127\.0\.0\.1 - - \[\d{2}\/[A-Z][a-z]{2}\/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\] "GET \/page\/0 HTTP\/1\.1" 200 11 "-" "node"$/);
      expect(lines[20]).toMatch(/^127\.0\.0\.1 - bob \[[^\]]+\] "GET \/missing HTTP\/1\.1" 404 - "http:\/\/x\/\\"q\\"" "node"$/);
      expect(log.dropped).toBe(0);
      expect(nextCalls).toBe(21);
    } finally {
      await new Promise((resolve) => server.close(resolve));
      await session.disconnect();
    }
  });

  it('--plain sends one line per message without header, as mod_log_spread does; logd writes them', async () => {
    const file = join(dir, 'plain.log');
    const collector = startCollector(dir, 'plain', { port: daemon.port, host: '127.0.0.1', files: [{ group: 'plain', file }] });
    started.push(collector);
    await waitForCollectors(collector, 'plain', 1);
    const sender = tool(['log-send', '-g', 'plain', '-s', `${daemon.port}@127.0.0.1`, '--plain', '--collectors', '0']);
    sender.send('alpha', '', 'gamma');
    sender.child.stdin.end();
    expect(await sender.exited).toBe(0);
    await waitUntil(() => fileLines(file).length >= 3, () => collector.stdout);
    expect(fileLines(file)).toEqual(['alpha', '', 'gamma']);
  });

  it('--help describes both commands', async () => {
    const send = tool(['log-send', '--help']);
    expect(await send.exited).toBe(0);
    for (const option of ['-g, --group', '-s, --server', '--service', '--syslog', '--buffer-bytes', '--collectors']) expect(send.stdout).toContain(option);
    const logd = tool(['logd', '--help']);
    expect(await logd.exited).toBe(0);
    expect(logd.stdout).toContain('-c, --config <file>');
  });
});
