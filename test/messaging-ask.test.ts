/**
 * tspread/messaging request/reply and bad input, on three real daemons: `ask`
 * across daemons, a clear timeout error, a late reply dropped (not handed to a
 * later ask), topics fanning out, and malformed or oversized input refused or
 * skipped without stopping a consumer.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '../src/client/index.js';
import { OPERATION_TYPE } from '../src/apps/shared/replicated-group.js';
import { AskTimeoutError, MessageFormatError, Messaging, type Consumer, type ReceivedMessage } from '../src/apps/messaging/index.js';
import type { StartedRing } from './helpers/daemon.js';
import { waitUntil } from './helpers/log-collectors.js';
import { startFormedRing } from './helpers/messaging.js';

let ring: StartedRing;
const clients: Messaging[] = [];

beforeAll(async () => {
  ring = await startFormedRing();
}, 300_000);

afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.close()));
});

afterAll(async () => {
  await ring?.stop();
});

async function client(index: number): Promise<Messaging> {
  const messaging = await Messaging.connect({ daemon: `${ring.daemons[index]!.port}@127.0.0.1` });
  clients.push(messaging);
  return messaging;
}

describe('ask', () => {
  it('gets the reply from a consumer on another daemon, with headers and JSON bodies', async () => {
    const server = await client(0);
    await server.consume('rpc-upper', (message) => message.reply({ upper: String((message.body as { text: string }).text).toUpperCase() }, { headers: { by: 'd1' } }));
    const asker = await client(2);
    const replies = await Promise.all(['a', 'b', 'c'].map((text) => asker.ask('rpc-upper', { text }, { timeoutMs: 10_000 })));
    expect(replies.map((reply) => reply.body)).toEqual([{ upper: 'A' }, { upper: 'B' }, { upper: 'C' }]);
    expect(replies[0]!.headers).toEqual({ by: 'd1' });
  });

  it('rejects with a clear timeout error when no reply comes', async () => {
    const asker = await client(1);
    await expect(asker.ask('rpc-nobody', 'hello', { timeoutMs: 200 })).rejects.toThrow(AskTimeoutError);
    await expect(asker.ask('rpc-nobody', 'hello', { timeoutMs: 200 })).rejects.toThrow('no reply from queue "rpc-nobody" within 200 ms');
  });

  it('drops a reply that comes after its ask timed out instead of handing it to a later ask', async () => {
    const server = await client(0);
    await server.consume('rpc-slow', async (message) => {
      if (message.body === 'slow') await new Promise((resolve) => setTimeout(resolve, 600));
      message.reply(`answer to ${String(message.body)}`);
    });
    const asker = await client(1);
    await expect(asker.ask('rpc-slow', 'slow', { timeoutMs: 150 })).rejects.toThrow(AskTimeoutError);
    const fast = asker.ask('rpc-slow', 'fast', { timeoutMs: 10_000 });
    expect((await fast).body).toBe('answer to fast');
    await waitUntil(() => asker.lateReplies === 1, () => `late replies ${asker.lateReplies}`, 10_000);
  });
});

describe('topics', () => {
  it('fans a message out to every subscriber on every daemon', async () => {
    const received: string[][] = [[], [], []];
    const subscribers = await Promise.all([0, 1, 2].map((index) => client(index)));
    subscribers.forEach((subscriber, index) => subscriber.subscribe('news', (message) => void received[index]!.push(String(message.body))));
    // A subscription counts from its join: wait until each sees a probe.
    const publisher = await client(0);
    await waitUntil(
      () => {
        publisher.publish('news', 'probe');
        return received.every((list) => list.includes('probe'));
      },
      () => 'subscribers not joined',
      20_000,
    );
    for (let index = 0; index < 100; index++) publisher.publish('news', `n${index}`);
    const news = (list: string[]) => list.filter((text) => text !== 'probe');
    await waitUntil(() => received.every((list) => news(list).length === 100), () => received.map((list) => news(list).length).join(','), 20_000);
    for (const list of received) expect(news(list)).toEqual(Array.from({ length: 100 }, (_, index) => `n${index}`));
  });
});

describe('bad input', () => {
  it('refuses oversized payloads, unserializable bodies and bad names with clear errors', async () => {
    const producer = await client(0);
    expect(() => producer.send('jobs', Buffer.alloc(200_000))).toThrow(/a message of \d+ bytes \(body and headers\) exceeds the limit of \d+ bytes/);
    expect(() => producer.send('jobs', 10n)).toThrow(MessageFormatError);
    expect(() => producer.send('jobs', () => 1)).toThrow(/not JSON-serializable/);
    expect(() => producer.send('jobs', 'x', { headers: { n: 1 as unknown as string } })).toThrow(/header "n" is not a string/);
    expect(() => producer.send('no spaces', 'x')).toThrow(/queue name must have/);
    expect(() => producer.send('q'.repeat(40), 'x')).toThrow(/queue name must have/);
    await expect(producer.ask('jobs', 'x', { timeoutMs: -1 })).rejects.toThrow(/timeoutMs must be a positive number/);
    await expect(producer.consume('jobs', () => {}, { prefetch: 0 })).rejects.toThrow(/prefetch must be a positive integer/);
  });

  it('skips malformed operations and records from a raw client; the consumers go on, in step', async () => {
    const seen: ReceivedMessage[][] = [[], []];
    const consumers = [await client(0), await client(2)];
    const queues: Consumer[] = [];
    for (const [index, consumer] of consumers.entries()) queues.push(await consumer.consume('q-bad', (message) => void seen[index]!.push(message)));
    const raw = await connect({ daemon: `${ring.daemons[1]!.port}@127.0.0.1` });
    try {
      raw.multicast('mq.q-bad', Buffer.from([99, 1, 2, 3]), { messType: OPERATION_TYPE }); // unknown operation
      raw.multicast('mq.q-bad', Buffer.from([3, 200]), { messType: OPERATION_TYPE }); // truncated ack
      // A publish batch with one record whose JSON body does not parse, then a truncated record.
      const broken = Buffer.from([1, 0, 0, 0, 0x7b]);
      const batch = Buffer.concat([Buffer.from([1]), Buffer.from([broken.length, 0, 0, 0]), broken, Buffer.from([50, 0, 0, 0, 1])]);
      raw.multicast('mq.q-bad', batch, { messType: OPERATION_TYPE });
    } finally {
      await raw.disconnect();
    }
    const producer = await client(1);
    for (let index = 0; index < 10; index++) producer.send('q-bad', { index });
    await waitUntil(() => seen[0]!.length + seen[1]!.length === 10, () => `consumed ${seen[0]!.length + seen[1]!.length}`, 20_000);
    const bodies = seen.flat().map((message) => (message.body as { index: number }).index);
    expect(bodies.sort((a, b) => a - b)).toEqual([...Array(10).keys()]);
    // Both members dropped the broken record the same way: their states are equal.
    await waitUntil(() => queues.every((queue) => queue.state.size === 0), () => queues.map((queue) => queue.state.size).join(','), 10_000);
    expect(queues[0]!.state.snapshot().equals(queues[1]!.state.snapshot())).toBe(true);
  });
});

describe('producer flow control', () => {
  it('send() says wait once a producer is ~1 MiB ahead of the ring; drained() resolves and nothing is lost', async () => {
    const consumer = await client(0);
    let received = 0;
    await consumer.consume('flow', () => void received++, { prefetch: 5000 });
    const producer = await client(2);
    const body = Buffer.alloc(1024, 'f');
    const answers: boolean[] = [];
    // One synchronous burst: no mark can come back before it ends.
    for (let index = 0; index < 3000; index++) answers.push(producer.send('flow', body));
    expect(answers.slice(0, 100).every(Boolean)).toBe(true);
    expect(answers.slice(1500).some((answer) => answer)).toBe(false);
    await producer.drained();
    expect(producer.send('flow', body)).toBe(true);
    await waitUntil(() => received === 3001, () => `received ${received} of 3001`, 30_000);
  });
});
