// Real nginx with `access_log syslog:server=127.0.0.1:P,tag=www combined;` into
// `tspread log-send --syslog udp://127.0.0.1:P`, two collectors on two daemons.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, startRing, type StartedRing } from './helpers/daemon.js';
import { ensureBuilt, ToolProcess } from './fake-daemon/processes.js';
import { fileLines, sorted, startCollector, stopTool, waitForCollectors, waitUntil } from './helpers/log-collectors.js';
import { runAb, startNginx, type WebServer } from './helpers/web-servers.js';

describe('nginx → syslog → tspread log-send --syslog → tspread logd ×2', () => {
  let ring: StartedRing;
  let dir: string;
  let collectors: ToolProcess[] = [];
  let sender: ToolProcess;
  let nginx: WebServer;
  let files: string[];

  beforeAll(async () => {
    ensureBuilt();
    ring = await startRing({ count: 2 });
    dir = mkdtempSync(join(tmpdir(), 'tspread-logs-'));
    files = [join(dir, 'a-access.log'), join(dir, 'b-access.log')];
    collectors = files.map((file, index) =>
      startCollector(dir, `c${index}`, { port: ring.daemons[index].port, host: '127.0.0.1', files: [{ group: 'www', file }] }),
    );
    await Promise.all(collectors.map((collector) => waitForCollectors(collector, 'www', 2)));
    const syslogPort = await freePort({ from: 25500, to: 25599, udp: ['127.0.0.1'] });
    sender = new ToolProcess(['log-send', '-g', 'www', '-s', `${ring.daemons[1].port}@127.0.0.1`, '--collectors', '2', '--syslog', `udp://127.0.0.1:${syslogPort}`]);
    await waitUntil(() => sender.stderr.includes('"msg":"listening for syslog"'), () => sender.stderr, 10_000);
    nginx = await startNginx({ port: await freePort(), syslogPort });
  }, 60_000);

  afterAll(async () => {
    await nginx?.stop();
    if (sender) await stopTool(sender);
    await Promise.all(collectors.map(stopTool));
    await ring?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 30_000);

  it('N requests give exactly N lines at both collectors, in the same order, each the line nginx wrote', async () => {
    const describeState = () => `${files.map((file) => fileLines(file).length).join(', ')} vs ${nginx.accessLines().length}\n${sender.stderr}\n${nginx.errorLog()}`;
    const { failed } = await runAb(nginx.port, 300, 2);
    expect(failed).toBe(0);
    const expected = nginx.accessLines().length; // 300 plus the probe that found nginx up
    expect(expected).toBeGreaterThanOrEqual(301);
    await waitUntil(() => files.every((file) => fileLines(file).length >= expected), describeState);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const [a, b] = files.map(fileLines);
    expect(a).toHaveLength(expected);
    expect(b).toEqual(a);
    expect(sorted(a)).toEqual(sorted(nginx.accessLines()));
    expect(a.at(-1)).toMatch(/^127\.0\.0\.1 - - \[[^\]]+\] "GET \/index\.html HTTP\/1\.0" 200 \d+ "-" "ApacheBench\/[\d.]+"$/);
  }, 60_000);

  it('log-send exits 0 on SIGTERM after sending what it holds', async () => {
    expect(await stopTool(sender)).toBe(0);
    expect(sender.stderr).toMatch(/"linesDropped":0,.*"msg":"done"/);
  });
});
