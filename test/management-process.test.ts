// The management tools against real `tspread daemon` processes (ports 25060–25069).
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCheck } from '../src/management/check.js';
import { CLI_PATH, soloConfig, startDaemon, type StartedDaemon } from './helpers/daemon.js';

const run = promisify(execFile);
const PORT = 25060;

describe('tspread check against a real daemon', () => {
  let daemon: StartedDaemon;
  beforeAll(async () => {
    daemon = await startDaemon({ port: PORT, config: soloConfig(PORT) });
  });
  afterAll(async () => {
    await daemon?.stop();
  });

  it('times self-delivery through the daemon over TCP and the Unix socket', async () => {
    const tcp = await runCheck({ daemon: `${PORT}@127.0.0.1`, warningMs: 1000, criticalMs: 2000, timeoutSeconds: 5 });
    expect(tcp.line).toMatch(/^SPREAD OK - self-delivery [\d.]+ ms at 25060@127\.0\.0\.1 \| latency=[\d.]+ms;1000;2000;0 connect=/);
    expect(tcp.status).toBe(0);
    expect(tcp.latencyMs).toBeGreaterThan(0);

    const unix = await runCheck({
      daemon: String(PORT),
      unixSocketDir: path.dirname(daemon.unixPath),
      warningMs: 1000,
      criticalMs: 2000,
      timeoutSeconds: 5,
      service: 'safe',
    });
    expect(unix.line).toMatch(/^SPREAD OK - self-delivery [\d.]+ ms at 25060 \|/);
  });

  it('runs as a Nagios plugin: exit 0 and one line; exit 2 once the daemon is gone', async () => {
    const ok = await run(process.execPath, [CLI_PATH, 'check', '-s', `${PORT}@127.0.0.1`, '-w', '1000', '-c', '2000', '-t', '5']);
    expect(ok.stdout).toMatch(/^SPREAD OK - self-delivery [\d.]+ ms at 25060@127\.0\.0\.1 \| latency=/);
    expect(ok.stdout.trim().split('\n')).toHaveLength(1);

    await daemon.stop();
    const down = await run(process.execPath, [CLI_PATH, 'check', '-s', `${PORT}@127.0.0.1`, '-t', '2']).catch((error: { code: number; stdout: string }) => error);
    expect(down).toMatchObject({ code: 2 });
    expect((down as { stdout: string }).stdout).toMatch(/^SPREAD CRITICAL - connect failed at 25060@127\.0\.0\.1/);
  });
});
