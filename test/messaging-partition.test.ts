/**
 * A queue across a real partition: three daemons in network namespaces
 * (test/helpers/netns-spread.ts), a producer and a competing consumer on each.
 * One daemon is cut off; producers on both sides keep sending while every consumer
 * is held back, so both sides hold messages the other never saw. After the heal one
 * side's state wins the transfer and the other side carries its unacknowledged
 * messages over: every sent message is consumed at least once.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { Messaging } from '../src/apps/messaging/index.js';
import type { Consumer } from '../src/apps/messaging/consumer.js';
import { waitUntil } from './helpers/log-collectors.js';
import { netnsAvailable } from './helpers/netns.js';
import { SpreadLab } from './helpers/netns-spread.js';

const noNetns = netnsAvailable();
const PER_PRODUCER = 200;

describe.skipIf(noNetns !== null)('a queue across a partition and its heal', () => {
  let lab: SpreadLab | undefined;
  const clients: Messaging[] = [];
  afterAll(async () => {
    for (const client of clients) await client.close().catch(() => undefined);
    await lab?.destroy();
  }, 30_000);

  it('messages sent on either side are all consumed at least once after the heal', async () => {
    lab = await SpreadLab.start(3);
    for (const daemon of lab.daemons) clients.push(await Messaging.connect({ daemon: '4803', unixSocketDir: daemon.unixDir }));
    const producers: Messaging[] = [];
    for (const daemon of lab.daemons) producers.push(await Messaging.connect({ daemon: '4803', unixSocketDir: daemon.unixDir }));
    clients.push(...producers);

    const consumed = new Set<string>();
    let open!: () => void;
    let gate: Promise<void> = Promise.resolve();
    const consumers: Consumer[] = [];
    for (const client of clients.slice(0, 3)) {
      consumers.push(
        await client.consume(
          'jobs',
          async (message) => {
            await gate;
            consumed.add((message.body as { id: string }).id);
          },
          { prefetch: 10 },
        ),
      );
    }
    const sizes = () => consumers.map((consumer) => consumer.state.consumers.length).join(' ');
    await waitUntil(() => consumers.every((consumer) => consumer.state.consumers.length === 3), () => `consumers not all registered: ${sizes()}`, 30_000);

    const sent: string[] = [];
    const sendRound = async (round: string) => {
      for (const [index, producer] of producers.entries()) {
        for (let n = 0; n < PER_PRODUCER; n++) {
          const id = `${round}-${index}-${n}`;
          sent.push(id);
          if (!producer.send('jobs', { id })) await producer.drained();
        }
      }
    };
    await sendRound('before');
    await waitUntil(() => sent.every((id) => consumed.has(id)), () => `before the partition: ${consumed.size} of ${sent.length} consumed`, 30_000);

    gate = new Promise((resolve) => (open = resolve));
    lab.partition([[0], [1, 2]]);
    await waitUntil(() => consumers[0]!.state.consumers.length === 1 && consumers.slice(1).every((consumer) => consumer.state.consumers.length === 2), () => `partition not seen: ${sizes()}`, 30_000);
    await sendRound('apart');
    // Each side queued what its producers sent (consumers are held back, 10 in flight each).
    await waitUntil(() => consumers[0]!.state.size >= PER_PRODUCER && consumers[1]!.state.size >= 2 * PER_PRODUCER, () => `sides did not queue: ${consumers.map((consumer) => consumer.state.size).join(' ')}`, 30_000);

    lab.heal();
    await waitUntil(() => consumers.every((consumer) => consumer.state.consumers.length === 3), () => `heal not seen: ${sizes()}`, 30_000);
    open();
    await sendRound('after');
    await waitUntil(() => sent.every((id) => consumed.has(id)), () => `missing ${sent.filter((id) => !consumed.has(id)).length} of ${sent.length}: e.g. ${sent.filter((id) => !consumed.has(id)).slice(0, 5).join(' ')}`, 60_000);
    expect(sent.filter((id) => !consumed.has(id))).toEqual([]);
  }, 150_000);
});
