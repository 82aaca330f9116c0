// Three real daemons on 127.0.0.1–3 under load from every side at once: on each daemon one
// unthrottled writer (`tspread flooder -wo`, 10,000 × 1,000-byte AGREED) and one counting
// receiver (`tspread flooder -ro`), over TCP on d1 and d3 and the Unix socket on d2. Every
// receiver must get all 30,000 messages and no daemon may cut anyone: a reader that keeps
// up is never cut, whatever the bursts of a token visit. Then a reader that truly stops
// (SIGSTOP) is cut, while the ring and every other receiver carry on.
// LOAD_ROUNDS=20 runs the first test 20 times (by hand; CI runs 3).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cutLines, floodWriter, peakRssKb, startFloodReceivers, type FloodOptions } from './helpers/flooders.js';
import { SPREAD_LAN_TIMEOUTS, startRing, type StartedRing } from './helpers/daemon.js';

const MESSAGES = 10_000;
const ROUNDS = Number(process.env.LOAD_ROUNDS ?? 3);
const FLOOD: FloodOptions = { messages: MESSAGES, bytes: 1000, service: 'agreed', senders: 3 };

let ring: StartedRing;
beforeAll(async () => {
  // About cuts, not membership: a daemon stalled by the loaded host must not leave the ring.
  ring = await startRing({ extraLines: SPREAD_LAN_TIMEOUTS });
}, 60_000);
afterAll(async () => {
  await ring?.stop();
});

describe('three daemons, three unthrottled writers', () => {
  it(`every counting receiver gets all ${3 * MESSAGES} messages and nobody is cut (${ROUNDS} rounds)`, async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const receivers = await startFloodReceivers(ring, ['r1', 'r2', 'r3'].map((name) => `${name}x${round}`), FLOOD);
      const writers = [0, 1, 2].map((index) => floodWriter(ring, index, `w${index + 1}x${round}`, FLOOD));
      try {
        const codes = await Promise.all([...writers, ...receivers].map((tool) => tool.exited));
        expect(codes, receivers.map((tool) => tool.stderr).join('\n')).toEqual([0, 0, 0, 0, 0, 0]);
        for (const tool of receivers) expect(JSON.parse(tool.stdout).received).toBe(3 * MESSAGES);
        expect(cutLines(ring)).toEqual([]);
      } finally {
        for (const tool of [...writers, ...receivers]) tool.kill();
      }
    }
  }, 60_000 * ROUNDS);

  it('cuts a reader that stops (SIGSTOP); the others get everything', async () => {
    const receivers = await startFloodReceivers(ring, ['k1', 'k2', 'k3', 'stop'], FLOOD);
    const stopped = receivers[3];
    stopped.child.kill('SIGSTOP');
    const writers = [0, 1, 2].map((index) => floodWriter(ring, index, `v${index + 1}`, FLOOD));
    try {
      const codes = await Promise.all([...writers, ...receivers.slice(0, 3)].map((tool) => tool.exited));
      expect(codes).toEqual([0, 0, 0, 0, 0, 0]);
      for (const tool of receivers.slice(0, 3)) expect(JSON.parse(tool.stdout).received).toBe(3 * MESSAGES);
      await ring.daemons[0].waitForOutput('"name":"#stop#d1"', 10_000);
      const cuts = cutLines(ring);
      expect(cuts).toHaveLength(1);
      expect(cuts[0]).toContain('#stop#d1');
      const rss = peakRssKb(ring.daemons[0].process.pid!);
      console.log(`d1 peak RSS with a stopped reader: ${(rss / 1024).toFixed(1)} MiB; ${JSON.parse(cuts[0]).why}`);
    } finally {
      stopped.child.kill('SIGCONT');
      for (const tool of [...writers, ...receivers]) tool.kill();
    }
  }, 60_000);
});
