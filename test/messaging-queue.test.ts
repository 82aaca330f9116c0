/**
 * tspread/messaging queues on three real daemons: 3 producers and 3 competing
 * consumers (`tspread mq` processes) on different daemons, 30 000 messages —
 * exactly once while every consumer lives; at least once, with duplicates only
 * among the killed consumer's unacknowledged messages, when one is SIGKILLed.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { StartedRing } from './helpers/daemon.js';
import { ensureBuilt, ToolProcess } from './fake-daemon/processes.js';
import { Messaging, type ReceivedMessage } from '../src/apps/messaging/index.js';
import { waitUntil } from './helpers/log-collectors.js';
import { consumedLines, daemonArgs, startConsumer, startFormedRing, type ConsumedLine } from './helpers/messaging.js';

const PER_PRODUCER = 10_000;
const TOTAL = 3 * PER_PRODUCER;
let ring: StartedRing;
const tools: ToolProcess[] = [];

beforeAll(async () => {
  ensureBuilt();
  ring = await startFormedRing();
}, 300_000);

afterEach(async () => {
  for (const tool of tools.splice(0)) {
    tool.kill();
    await tool.exited;
  }
});

afterAll(async () => {
  await ring?.stop();
});

/** Three producers, one per daemon, each sending PER_PRODUCER lines "pN-i" from stdin. */
async function produce(queue: string): Promise<void> {
  const producers = [0, 1, 2].map((index) => {
    const tool = new ToolProcess(['mq', 'send', queue, ...daemonArgs(ring, index)]);
    tools.push(tool);
    const lines = Array.from({ length: PER_PRODUCER }, (_, i) => `p${index}-${i}`);
    tool.child.stdin.end(`${lines.join('\n')}\n`);
    return tool;
  });
  const codes = await Promise.all(producers.map((tool) => tool.exited));
  expect(codes, producers.map((tool) => tool.stderr).join('\n')).toEqual([0, 0, 0]);
}

function countBodies(lines: ConsumedLine[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const line of lines) counts.set(line.body, (counts.get(line.body) ?? 0) + 1);
  return counts;
}

describe('queue with competing consumers on three daemons', () => {
  it('consumes every one of 30 000 messages exactly once while no consumer dies', async () => {
    const consumers: ToolProcess[] = [];
    for (const index of [0, 1, 2]) consumers.push(await startConsumer(ring, index, 'q-once'));
    tools.push(...consumers);
    await produce('q-once');
    const all = () => consumers.flatMap(consumedLines);
    await waitUntil(() => all().length >= TOTAL, () => `consumed ${all().length} of ${TOTAL}`, 120_000);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const lines = all();
    expect(lines.length).toBe(TOTAL);
    const counts = countBodies(lines);
    expect(counts.size).toBe(TOTAL);
    expect([...counts.values()].every((count) => count === 1)).toBe(true);
    expect(lines.every((line) => line.deliveryCount === 1)).toBe(true);
    for (const consumer of consumers) expect(consumedLines(consumer).length).toBeGreaterThan(0);
  }, 180_000);

  it('redelivers a killed consumer’s unacknowledged messages: all at least once, duplicates only among those', async () => {
    const prefetch = 200;
    const consumers: ToolProcess[] = [];
    for (const index of [0, 1, 2]) consumers.push(await startConsumer(ring, index, 'q-kill', ['--prefetch', String(prefetch)]));
    tools.push(...consumers);
    const victim = consumers[1]!;
    const survivors0 = () => [consumers[0]!, consumers[2]!].flatMap(consumedLines);
    const producing = produce('q-kill');
    await waitUntil(() => consumedLines(victim).length >= 1000, () => `victim consumed ${consumedLines(victim).length}`, 120_000);
    victim.kill();
    await victim.exited;
    // Killed mid-stream: the others still had messages to take.
    expect(consumedLines(victim).length + survivors0().length).toBeLessThan(TOTAL);
    await producing;
    const survivors = [consumers[0]!, consumers[2]!];
    const bodies = () => countBodies([...consumedLines(victim), ...survivors.flatMap(consumedLines)]);
    const missing = () => Array.from({ length: TOTAL }, (_, n) => `p${n % 3}-${Math.floor(n / 3)}`).filter((body) => !bodies().has(body));
    await waitUntil(() => bodies().size >= TOTAL, () => `consumed ${bodies().size} distinct of ${TOTAL}; missing ${missing().slice(0, 10).join(', ')}`, 120_000);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const victimBodies = new Set(consumedLines(victim).map((line) => line.body));
    const survivorLines = survivors.flatMap(consumedLines);
    const survivorCounts = countBodies(survivorLines);
    expect([...survivorCounts.values()].every((count) => count === 1)).toBe(true);
    const duplicates = survivorLines.filter((line) => victimBodies.has(line.body));
    expect(duplicates.length).toBeLessThanOrEqual(prefetch);
    expect(duplicates.every((line) => line.deliveryCount >= 2)).toBe(true);
    // The victim held unacknowledged messages when it died; the survivors took them.
    expect(survivorLines.filter((line) => line.deliveryCount >= 2).length).toBeGreaterThan(0);
    expect(bodies().size).toBe(TOTAL);
  }, 240_000);
});

describe('held messages and late joiners', () => {
  it('holds what no consumer has room for; a consumer joining later gets the queue state and takes it over', async () => {
    const clients = await Promise.all([0, 1, 2].map((index) => Messaging.connect({ daemon: `${ring.daemons[index]!.port}@127.0.0.1` })));
    try {
      const [first, producer, late] = clients as [Messaging, Messaging, Messaging];
      const held: ReceivedMessage[] = [];
      // The first consumer takes one message and never finishes it.
      const blocked = await first.consume('q-held', (message) => new Promise<void>(() => void held.push(message)), { prefetch: 1 });
      for (let index = 0; index < 50; index++) producer.send('q-held', { index }, { idempotencyKey: `k${index}` });
      producer.send('q-held', { index: 0 }, { idempotencyKey: 'k0' }); // a producer retry: queued once
      await waitUntil(() => blocked.state.size === 50, () => `queued ${blocked.state.size}`, 20_000);
      expect(held.map((message) => message.body)).toEqual([{ index: 0 }]);
      expect(blocked.state.waiting).toBe(49);
      const taken: ReceivedMessage[] = [];
      await late.consume('q-held', (message) => void taken.push(message));
      await waitUntil(() => taken.length === 49, () => `late consumer took ${taken.length}`, 20_000);
      expect(taken.map((message) => (message.body as { index: number }).index)).toEqual(Array.from({ length: 49 }, (_, index) => index + 1));
      // The first consumer leaves: its unfinished message goes to the late one, delivered twice.
      await blocked.stop();
      await waitUntil(() => taken.length === 50, () => `late consumer took ${taken.length}`, 20_000);
      expect(taken[49]).toMatchObject({ body: { index: 0 }, deliveryCount: 2, idempotencyKey: 'k0' });
    } finally {
      await Promise.all(clients.map((client) => client.close()));
    }
  }, 60_000);
});
