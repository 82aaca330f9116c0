// Throughput of one daemon: 1000-byte AGREED messages from one sender to one receiver.
// Target ~100k msgs/s on a quiet machine; the assertion is loose (test runs share the
// machine) and the measured rate is printed. TSPREAD_PERF_MIN raises the bar.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ServiceType, encodeHint, encodeMessage } from '../src/protocol/index.js';
import { freePort, startDaemon, type StartedDaemon } from './helpers/daemon.js';
import { RawClient } from './helpers/raw-client.js';

const MESSAGES = 200_000;
const BATCH = 64;

describe('daemon throughput', () => {
  let daemon: StartedDaemon;
  beforeAll(async () => {
    daemon = await startDaemon({ port: await freePort() });
  }, 30_000);
  afterAll(async () => {
    await daemon.stop();
  }, 30_000);

  for (const transport of ['unix', 'tcp'] as const) {
    it(`1 sender → 1 receiver over ${transport}`, async () => {
      const endpoint = transport === 'unix' ? { path: daemon.unixPath } : { port: daemon.port };
      const receiver = await RawClient.join(endpoint, `r${transport}`);
      const sender = await RawClient.join(endpoint, `s${transport}`);
      receiver.joinGroup('perf');
      await receiver.message();
      const message = encodeMessage({
        type: ServiceType.AGREED_MESS,
        sender: sender.privateGroup,
        groups: ['perf'],
        hintRaw: encodeHint(1),
        data: Buffer.alloc(1000, 1),
      });
      const batch = Buffer.concat(Array.from({ length: BATCH }, () => message));
      const expectedBytes = MESSAGES * message.length;
      let received = 0;
      receiver.socket.removeAllListeners('data');
      const done = new Promise<void>((resolve, reject) => {
        receiver.socket.on('data', (chunk: Buffer) => {
          received += chunk.length;
          if (received >= expectedBytes) resolve();
        });
        receiver.socket.once('close', () => reject(new Error(`receiver closed after ${received} bytes`)));
      });
      const started = performance.now();
      let sent = 0;
      const pump = () => {
        while (sent < MESSAGES) {
          sent += BATCH;
          if (!sender.socket.write(batch)) {
            sender.socket.once('drain', pump);
            return;
          }
        }
      };
      pump();
      await done;
      const seconds = (performance.now() - started) / 1000;
      const rate = Math.round(MESSAGES / seconds);
      console.log(`daemon throughput over ${transport}: ${rate} msgs/s (${((received / seconds) / 1e6).toFixed(1)} MB/s)`);
      expect(received).toBe(expectedBytes);
      expect(rate).toBeGreaterThan(Number(process.env.TSPREAD_PERF_MIN ?? 15_000));
      sender.close();
      receiver.close();
    }, 60_000);
  }
});
