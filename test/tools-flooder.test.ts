// `tspread flooder` smoke tests on a real daemon: one process reading its own
// messages, and a -wo sender with a -ro receiver; checks the printed figures.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '../src/client/index.js';
import { ensureBuilt, ToolProcess } from './fake-daemon/processes.js';
import { soloConfig, startDaemon, type StartedDaemon } from './helpers/daemon.js';

const PORT = 24930;
let daemon: StartedDaemon;
let socketDir: string;
beforeAll(async () => {
  ensureBuilt();
  daemon = await startDaemon({ port: PORT, config: soloConfig(PORT) });
  socketDir = daemon.unixPath.replace(/\/[^/]+$/, '');
}, 120_000);
afterAll(async () => {
  await daemon?.stop();
});

describe('tspread flooder', () => {
  it('prints spflooder-style progress and msgs/s, Mbit/s and latency percentiles', async () => {
    const flooder = new ToolProcess(['flooder', '-s', String(PORT), '--socket-dir', socketDir, '-m', '2000', '-b', '500']);
    expect(await flooder.exited).toBe(0);
    expect(flooder.stdout).toContain('flooder: sent 1000 messages');
    expect(flooder.stdout).toContain('flooder: received 2000 messages');
    expect(flooder.stdout).toMatch(/sent 2000, received 2000 \(2000 own\) RELIABLE messages of 500 bytes in [\d.]+ s/);
    const rate = /flooder: (\d+) msgs\/s, ([\d.]+) Mbit\/s/.exec(flooder.stdout);
    expect(rate).not.toBeNull();
    const [msgsPerSec, mbitPerSec] = [Number(rate![1]), Number(rate![2])];
    expect(msgsPerSec).toBeGreaterThan(0);
    expect(mbitPerSec).toBeCloseTo((msgsPerSec * 500 * 8) / 1e6, 0);
    const latency = /latency p50 ([\d.]+) ms, p99 ([\d.]+) ms, max ([\d.]+) ms \(2000 samples\)/.exec(flooder.stdout);
    expect(latency).not.toBeNull();
    expect(Number(latency![1])).toBeLessThanOrEqual(Number(latency![2]));
  });

  it('-wo sender to a -ro receiver, with --service and --json', async () => {
    // A watcher sees the receiver join before the sender starts, then leaves.
    const watcher = await connect({ daemon: `${PORT}@127.0.0.1`, privateName: 'watch' });
    const joined = new Promise<void>((resolve) =>
      watcher.on('membership', (message) => {
        if (message.members.includes('#rcv#localhost')) resolve();
      }),
    );
    watcher.join('flooder');
    const receiver = new ToolProcess(['flooder', '-ro', '-u', 'rcv', '-s', `${PORT}@127.0.0.1`, '-m', '3000', '--service', 'safe', '--json']);
    await joined;
    await watcher.disconnect();
    const sender = new ToolProcess(['flooder', '-wo', '-u', 'snd', '-s', `${PORT}@127.0.0.1`, '-m', '3000', '--service', 'safe', '--json']);
    expect(await sender.exited).toBe(0);
    expect(await receiver.exited).toBe(0);
    const sent = JSON.parse(sender.stdout);
    const received = JSON.parse(receiver.stdout);
    expect(sent).toMatchObject({ privateGroup: '#snd#localhost', service: 'safe', bytes: 1000, sent: 3000, received: 0 });
    expect(received).toMatchObject({ privateGroup: '#rcv#localhost', service: 'safe', sent: 0, received: 3000, ownReceived: 0 });
    expect(received.latencyMs.samples).toBe(3000);
    expect(received.msgsPerSec).toBeGreaterThan(0);
  });

  it('-n waits for the members, then everyone sends FIFO', async () => {
    const args = (name: string) => ['flooder', '-u', name, '-s', `${PORT}@127.0.0.1`, '-m', '500', '-b', '100', '-n', '2', '--json'];
    const one = new ToolProcess(args('f1'));
    const two = new ToolProcess(args('f2'));
    expect(await one.exited).toBe(0);
    expect(await two.exited).toBe(0);
    for (const output of [one.stdout, two.stdout]) {
      expect(JSON.parse(output)).toMatchObject({ service: 'fifo', sent: 500, received: 1000, ownReceived: 500 });
    }
  });

  it('-ro ends on the count against a writer whose messages carry no stamp (Spread\'s spflooder)', async () => {
    const watcher = await connect({ daemon: `${PORT}@127.0.0.1`, privateName: 'watch2' });
    const joined = new Promise<void>((resolve) =>
      watcher.on('membership', (message) => {
        if (message.members.includes('#plain#localhost')) resolve();
      }),
    );
    watcher.join('flooder');
    const receiver = new ToolProcess(['flooder', '-ro', '-u', 'plain', '-s', `${PORT}@127.0.0.1`, '-m', '2000']);
    await joined;
    await watcher.disconnect();
    // spflooder -wo -m 2000: 1000-byte messages of its own bytes, RELIABLE, no tspread stamp.
    const writer = await connect({ daemon: `${PORT}@127.0.0.1`, privateName: 'spfl' });
    const payload = Buffer.alloc(1000, 0);
    for (let i = 0; i < 2000; i++) {
      payload.writeUInt32LE(i, 0);
      if (!writer.multicast('flooder', payload, { service: 'reliable' })) await writer.drained();
    }
    expect(await receiver.exited).toBe(0);
    await writer.disconnect();
    expect(receiver.stdout).toContain('flooder: received 2000 messages');
    expect(receiver.stdout).toMatch(/sent 0, received 2000 \(0 own\) RELIABLE messages of 1000 bytes/);
    expect(receiver.stdout).toContain('latency n/a');
  });
});
