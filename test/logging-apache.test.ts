// Real Apache httpd with `CustomLog "|tspread log-send …" combined`, two collectors on two
// daemons: identical files in the same order, rotation under load, and a restart of the
// sender's daemon while Apache serves.
import { mkdtempSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, startDaemon, startRing, type StartedDaemon, type StartedRing } from './helpers/daemon.js';
import { ensureBuilt, type ToolProcess } from './fake-daemon/processes.js';
import { fileLines, logSendCommand, sorted, startCollector, stopTool, waitForCollectors, waitUntil } from './helpers/log-collectors.js';
import { runAb, startApache, type WebServer } from './helpers/web-servers.js';

describe('Apache httpd → tspread log-send → tspread logd ×2', () => {
  let ring: StartedRing;
  let senderDaemon: StartedDaemon;
  let dir: string;
  let collectorA: ToolProcess;
  let collectorB: ToolProcess;
  let apache: WebServer;
  let fileA: string;
  let fileB: string;

  const bothHave = (count: number) => () => fileLines(fileA).length >= count && fileLines(fileB).length >= count;
  const counts = () => `a ${fileLines(fileA).length}, b ${fileLines(fileB).length}, apache ${apache.accessLines().length}\n${apache.errorLog()}`;

  beforeAll(async () => {
    ensureBuilt();
    ring = await startRing({ count: 2 });
    senderDaemon = ring.daemons[1];
    dir = mkdtempSync(join(tmpdir(), 'tspread-logs-'));
    fileA = join(dir, 'a-access.log');
    fileB = join(dir, 'b-access.log');
    collectorA = startCollector(dir, 'a', { port: ring.daemons[0].port, host: '127.0.0.1', files: [{ group: 'www', file: fileA }] });
    collectorB = startCollector(dir, 'b', { port: ring.daemons[1].port, host: '127.0.0.1', files: [{ group: 'www', file: fileB }] });
    await Promise.all([waitForCollectors(collectorA, 'www', 2), waitForCollectors(collectorB, 'www', 2)]);
    const sender = logSendCommand(['-g', 'www', '-s', `${senderDaemon.port}@127.0.0.1`, '--collectors', '2']);
    apache = await startApache({ port: await freePort(), pipedLogger: sender });
    // The probe request that found Apache up is a line too.
    await waitUntil(bothHave(1), counts);
  }, 60_000);

  afterAll(async () => {
    await apache?.stop();
    await Promise.all([collectorA, collectorB].filter(Boolean).map(stopTool));
    await senderDaemon?.stop();
    await ring?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 30_000);

  it('N requests give exactly N lines at both collectors, in the same order, each the line Apache wrote', async () => {
    const before = fileLines(fileA).length;
    const { failed } = await runAb(apache.port, 400, 4);
    expect(failed).toBe(0);
    await waitUntil(bothHave(before + 400), counts);
    await new Promise((resolve) => setTimeout(resolve, 300)); // nothing more may arrive
    const a = fileLines(fileA);
    expect(a).toHaveLength(before + 400);
    expect(fileLines(fileB)).toEqual(a);
    expect(sorted(a)).toEqual(sorted(apache.accessLines()));
    expect(a.at(-1)).toMatch(/^127\.0\.0\.1 - - \[[^\]]+\] "GET \/index\.html HTTP\/1\.0" 200 \d+ "-" "ApacheBench\/[\d.]+"$/);
  }, 60_000);

  it('mv + SIGHUP in the middle of a stream: old file + new file hold every line once', async () => {
    const before = fileLines(fileA).length;
    const apacheBefore = apache.accessLines().length;
    // Two back-to-back streams of 1500 requests; the move and SIGHUP fall inside the first.
    const first = runAb(apache.port, 1500, 2);
    await waitUntil(() => fileLines(fileA).length >= before + 300, counts);
    renameSync(fileA, `${fileA}.1`);
    collectorA.child.kill('SIGHUP');
    await collectorA.waitFor('"msg":"reopened files"');
    const second = runAb(apache.port, 1500, 2);
    const results = await Promise.all([first, second]);
    expect(results.map((result) => result.failed)).toEqual([0, 0]);
    const rotated = () => [...fileLines(`${fileA}.1`), ...fileLines(fileA)];
    await waitUntil(() => rotated().length >= before + 3000 && fileLines(fileB).length >= before + 3000, counts);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(fileLines(`${fileA}.1`).length).toBeGreaterThan(before);
    expect(fileLines(fileA).length).toBeGreaterThan(0);
    expect(rotated()).toEqual(fileLines(fileB));
    expect(sorted(rotated().slice(before))).toEqual(sorted(apache.accessLines().slice(apacheBefore)));
  }, 60_000);

  it("restart of log-send's daemon: Apache keeps serving, the outage's lines arrive after it or are counted as dropped", async () => {
    const rotatedA = () => [...fileLines(`${fileA}.1`), ...fileLines(fileA)];
    const before = rotatedA().length;
    const apacheBefore = apache.accessLines().length;
    await runAb(apache.port, 100, 2);
    await waitUntil(() => rotatedA().length >= before + 100, counts);

    await senderDaemon.stop();
    const startedAt = Date.now();
    const { failed } = await runAb(apache.port, 200, 2);
    expect(failed).toBe(0);
    expect(Date.now() - startedAt).toBeLessThan(10_000);
    senderDaemon = await startDaemon({ port: senderDaemon.port, config: ring.config, args: ['-n', 'd2'] });
    await collectorB.waitFor('reconnected: lines sent to these groups during the gap are missing', 20_000);

    await runAb(apache.port, 100, 2);
    const apacheLines = () => apache.accessLines().slice(apacheBefore);
    const dropped = () => [...apache.errorLog().matchAll(/"droppedLines":(\d+)/g)].reduce((sum, match) => sum + Number(match[1]), 0);
    await waitUntil(() => rotatedA().length - before + dropped() >= 400, counts, 30_000);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const delivered = rotatedA().slice(before);
    // Every line Apache wrote arrived once, or was reported dropped: none lost silently, none twice.
    expect(delivered.length + dropped()).toBe(400);
    expect(dropped()).toBe(0); // 64 MiB of buffer hold an outage of this size
    expect(sorted(delivered)).toEqual(sorted(apacheLines()));
    // log-send's own log (Apache's ErrorLog) tells the story.
    expect(apache.errorLog()).toContain('lost the daemon; holding lines and reconnecting');
    const held = /"heldBytes":(\d+),"msg":"reconnected"/.exec(apache.errorLog());
    expect(Number(held?.[1])).toBeGreaterThan(0); // the outage's lines waited in log-send
    // Collector B was cut off with the daemon: its lines are A's, in A's order, minus its gap.
    const a = rotatedA();
    let cursor = 0;
    for (const line of fileLines(fileB)) {
      cursor = a.indexOf(line, cursor);
      expect(cursor).toBeGreaterThanOrEqual(0);
      cursor++;
    }
  }, 90_000);
});
