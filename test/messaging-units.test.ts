/** The pure pieces of tspread/messaging: queue state (assignment, redelivery, snapshot), records and operations. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeRecord, encodeRecord, MessageFormatError, RECORD_BYTES_MAX, recordKey } from '../src/apps/messaging/envelope.js';
import { applyOperation, encodeAcks, encodeRegister, PUBLISH } from '../src/apps/messaging/operations.js';
import { QueueState, type QueueEntry } from '../src/apps/messaging/queue-state.js';

const record = (text: string, key?: string) => encodeRecord({ body: Buffer.from(text), idempotencyKey: key });

type Step =
  | { kind: 'publish'; key: number | null }
  | { kind: 'register'; consumer: number; prefetch: number }
  | { kind: 'ack'; consumer: number; count: number }
  | { kind: 'nack'; consumer: number }
  | { kind: 'leave'; consumer: number }
  | { kind: 'snapshot' };

const consumers = ['#c0#d1', '#c1#d2', '#c2#d3'];
const stepArbitrary: fc.Arbitrary<Step> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('publish' as const), key: fc.option(fc.integer({ min: 0, max: 30 })) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('register' as const), consumer: fc.integer({ min: 0, max: 2 }), prefetch: fc.integer({ min: 1, max: 4 }) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('ack' as const), consumer: fc.integer({ min: 0, max: 2 }), count: fc.integer({ min: 1, max: 3 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('nack' as const), consumer: fc.integer({ min: 0, max: 2 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('leave' as const), consumer: fc.integer({ min: 0, max: 2 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('snapshot' as const) }) },
);

/** Runs steps on a state, recording each assignment as "id>owner#deliveries". */
function run(steps: Step[], restoreAt: number | null = null): { state: QueueState; assignments: string[] } {
  let state = new QueueState({ maxDeliveries: 3 });
  const assignments: string[] = [];
  const watch = (target: QueueState) => (target.onAssign = (entry: QueueEntry) => assignments.push(`${entry.id}>${entry.owner}#${entry.deliveries}`));
  watch(state);
  let members = [...consumers];
  steps.forEach((step, index) => {
    if (index === restoreAt) {
      const copy = new QueueState({ maxDeliveries: 3 });
      copy.restore(state.snapshot());
      state = copy;
      watch(state);
    }
    const name = 'consumer' in step ? consumers[step.consumer]! : '';
    if (step.kind === 'publish') state.publish(record('m', step.key === null ? undefined : `k${step.key}`), step.key === null ? null : `k${step.key}`);
    else if (step.kind === 'register') {
      if (!members.includes(name)) members = [...members, name];
      state.register(name, step.prefetch);
    } else if (step.kind === 'ack') state.ack(name, state.ownedBy(name).slice(0, step.count).map((entry) => entry.id));
    else if (step.kind === 'nack') state.nack(name, state.ownedBy(name).slice(0, 1).map((entry) => entry.id));
    else if (step.kind === 'leave') {
      members = members.filter((member) => member !== name);
      state.setMembers(members);
    }
  });
  return { state, assignments };
}

describe('queue state', () => {
  it('keeps its invariants: in-flight within prefetch, nothing lost, owners are consumers', () => {
    fc.assert(
      fc.property(fc.array(stepArbitrary, { maxLength: 120 }), (steps) => {
        const { state } = run(steps);
        const counters = state.counters;
        expect(counters.published - counters.duplicates - counters.overflowed).toBe(counters.acknowledged + counters.deadLettered + state.size);
        let owned = 0;
        for (const name of state.consumers) {
          const mine = state.ownedBy(name).length;
          owned += mine;
          expect(mine).toBe(state.inflight(name));
        }
        expect(owned + state.waiting).toBe(state.size);
        // Something waits only when no consumer has room.
        if (state.waiting > 0) for (const name of state.consumers) expect(state.ownedBy(name).length).toBeGreaterThan(0);
      }),
      { numRuns: 300 },
    );
  });

  it('a member restored from a snapshot makes the same assignments as the group from then on', () => {
    fc.assert(
      fc.property(fc.array(stepArbitrary, { minLength: 1, maxLength: 120 }), fc.nat(), (steps, cut) => {
        const at = cut % steps.length;
        const original = run(steps);
        const restored = run(steps, at);
        expect(restored.assignments).toEqual(original.assignments);
        expect(restored.state.snapshot().equals(original.state.snapshot())).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('assigns each message exactly once while no consumer leaves, round robin within prefetch', () => {
    const state = new QueueState();
    const seen: string[] = [];
    state.onAssign = (entry) => seen.push(`${entry.id}:${entry.owner}`);
    state.publish(record('early'), null);
    expect(state.waiting).toBe(1);
    state.register('a', 2);
    state.register('b', 2);
    state.ack('a', [1]);
    seen.length = 0;
    for (let index = 0; index < 5; index++) state.publish(record(`m${index}`), null);
    expect(seen).toEqual(['2:a', '3:b', '4:a', '5:b']);
    state.ack('b', [3]);
    expect(seen.at(-1)).toBe('6:b');
    state.ack('a', [3]); // not a's: ignored
    expect(state.size).toBe(4);
    expect(state.waiting).toBe(0);
  });

  it("gives a leaver's unacknowledged messages to the others with a raised delivery count", () => {
    const state = new QueueState();
    const seen: QueueEntry[] = [];
    state.register('a', 10);
    state.register('b', 10);
    for (let index = 0; index < 4; index++) state.publish(record(`m${index}`), null);
    state.ack('a', [1]);
    state.onAssign = (entry) => seen.push({ ...entry });
    state.setMembers(['b']);
    expect(seen.map((entry) => [entry.id, entry.owner, entry.deliveries])).toEqual([[3, 'b', 2]]);
    expect(state.consumers).toEqual(['b']);
  });

  it('drops a republished idempotency key and bounds the queue', () => {
    const state = new QueueState({ maxRecords: 2 });
    state.publish(record('x', 'k'), 'k');
    state.publish(record('x', 'k'), 'k');
    state.publish(record('y'), null);
    state.publish(record('z'), null);
    expect(state.size).toBe(2);
    expect(state.counters).toMatchObject({ duplicates: 1, overflowed: 1 });
    // A retry of a message refused for room is queued once there is room.
    state.publish(record('w', 'w'), 'w');
    state.register('a', 10);
    state.ack('a', [1, 2]);
    state.publish(record('w', 'w'), 'w');
    expect(state.size).toBe(1);
    expect(state.counters).toMatchObject({ duplicates: 1, overflowed: 2 });
  });
});

describe('records and operations', () => {
  it('round-trips bytes and JSON bodies with headers, keys and reply addresses', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.uint8Array({ maxLength: 300 }), fc.jsonValue()),
        fc.dictionary(fc.string({ maxLength: 8 }), fc.string({ maxLength: 8 })),
        fc.option(fc.string({ minLength: 1, maxLength: 20 }), { nil: undefined }),
        (body, headers, key) => {
          const bytes = encodeRecord({ body, headers, idempotencyKey: key, replyTo: '#me#d1', correlation: 42 });
          const decoded = decodeRecord(bytes);
          expect(decoded.body instanceof Uint8Array ? Buffer.from(decoded.body) : decoded.body).toEqual(body instanceof Uint8Array ? Buffer.from(body) : JSON.parse(JSON.stringify(body)));
          expect(decoded.headers).toEqual(Object.keys(headers).length === 0 ? {} : JSON.parse(JSON.stringify(headers)));
          expect(decoded.idempotencyKey).toBe(key);
          expect([decoded.replyTo, decoded.correlation]).toEqual(['#me#d1', 42]);
          expect(recordKey(bytes)).toBe(key === undefined ? null : Buffer.from(key).toString('latin1'));
        },
      ),
    );
  });

  it('refuses bad input with clear errors', () => {
    expect(() => encodeRecord({ body: Buffer.alloc(RECORD_BYTES_MAX) })).toThrow(/exceeds the limit of \d+ bytes/);
    expect(() => encodeRecord({ body: 10n })).toThrow(MessageFormatError);
    expect(() => encodeRecord({ body: undefined })).toThrow(/not JSON-serializable/);
    expect(() => encodeRecord({ body: 1, headers: { a: 1 as unknown as string } })).toThrow(/header "a" is not a string/);
    expect(() => decodeRecord(Buffer.from([1, 0, 0, 0, 0x7b]))).toThrow(/JSON body that does not parse/);
    expect(() => decodeRecord(Buffer.from([0, 9, 0]))).toThrow(/truncated/);
  });

  it('applies batches, registrations and acks; a malformed tail keeps the records before it', () => {
    const state = new QueueState();
    applyOperation(state, encodeRegister('a', 5));
    const one = record('one');
    const batch = Buffer.alloc(1 + 4 + one.length + 3);
    batch[0] = PUBLISH;
    batch.writeUInt32LE(one.length, 1);
    one.copy(batch, 5);
    expect(() => applyOperation(state, batch)).toThrow(/malformed tail/);
    expect(state.ownedBy('a').map((entry) => entry.id)).toEqual([1]);
    expect(applyOperation(state, encodeAcks('a', [1]))).toMatchObject({ settledBy: 'a', settled: [1] });
    expect(state.size).toBe(0);
    expect(() => applyOperation(state, Buffer.from([3, 1, 97, 9]))).toThrow(/truncated/);
    expect(() => applyOperation(state, Buffer.from([77, 0]))).toThrow(/unknown queue operation/);
  });
});

describe('carrying a queue over into a merge', () => {
  const publish = (state: QueueState, body: string, key?: string) => {
    const record = encodeRecord({ body, idempotencyKey: key });
    const batch = Buffer.alloc(1 + 4 + record.length);
    batch[0] = PUBLISH;
    batch.writeUInt32LE(record.length, 1);
    record.copy(batch, 5);
    applyOperation(state, batch);
  };
  const bodies = (state: QueueState) => [...Array(state.size + 10).keys()].flatMap((id) => {
    const entry = state.entry(id);
    return entry === undefined ? [] : [decodeRecord(entry.batch.subarray(entry.offset, entry.offset + entry.length)).body as string];
  });

  it('republishes every unacknowledged record, in batches under the limit; remembered keys are not queued twice', () => {
    const loser = new QueueState();
    const winner = new QueueState();
    publish(winner, 'both', 'k-both');
    publish(loser, 'both', 'k-both');
    for (let n = 0; n < 50; n++) publish(loser, `lost-${n}`);
    loser.register('c', 5);
    loser.ack('c', [1, 2]); // 'both' and lost-0 were consumed on the losing side
    const batches = loser.republishBatches(300);
    expect(batches.length).toBeGreaterThan(1);
    expect(batches.every((batch) => batch.length <= 300 && batch[0] === PUBLISH)).toBe(true);
    for (const batch of batches) applyOperation(winner, batch);
    expect(bodies(winner)).toEqual(['both', ...Array.from({ length: 49 }, (_, n) => `lost-${n + 1}`)]);
    expect(new QueueState().republishBatches(300)).toEqual([]);
  });
});
