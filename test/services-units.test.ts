/**
 * The replicated service's pure parts: ServiceCore instances fed one total order
 * by a small in-memory group (crashes drop a member's undelivered messages, as
 * a failed Spread member's are), the wire codec and the health assessment.
 */
import { describe, expect, it } from 'vitest';
import { assessHealth } from '../src/apps/services/health.js';
import { decodeOperation, encode, PAYLOAD_BYTES_MAX, type Operation, type Outcome, type Style } from '../src/apps/services/protocol.js';
import { ServiceCore } from '../src/apps/services/service-core.js';
import { counterHandlers, type CounterState } from '../src/apps/services/counter.js';
import { ReplyCache } from '../src/apps/services/reply-cache.js';

interface Member {
  core: ServiceCore<CounterState>;
}

/** Members in join order; `order` is the total order still to be delivered. */
class Group {
  readonly members = new Map<string, Member>();
  readonly order: { from: string; operation: Operation }[] = [];
  /** Replies per call number: [replica, outcome]. */
  readonly replies = new Map<number, [string, Outcome][]>();
  #requests = 0;

  constructor(style: Style, names: string[]) {
    for (const name of names) this.#add(name, style);
    this.#view();
  }

  #add(name: string, style: Style): Member {
    const member: Member = {
      core: new ServiceCore(counterHandlers, { value: 0 }, style, {
        me: () => name,
        inSync: () => true,
        reply: (_to, id, outcome) => this.replies.set(id, [...(this.replies.get(id) ?? []), [name, outcome]]),
        multicast: (operation) => this.order.push({ from: name, operation: structuredClone(operation) }),
      }),
    };
    this.members.set(name, member);
    return member;
  }

  #view(): void {
    for (const member of this.members.values()) member.core.onView([...this.members.keys()]);
  }

  /** Call `n` of client 'c', which says it has every reply under `below`. */
  request(method = 'increment', args: unknown = null, n = ++this.#requests, below = 1): number {
    this.order.push({ from: 'client', operation: { k: 'q', c: 'c', n, d: below, to: '#c', m: method, a: args } });
    return n;
  }

  /** Delivers `count` operations of the order (all by default) to every member. */
  deliver(count = Infinity): void {
    for (let delivered = 0; delivered < count && this.order.length > 0; delivered++) {
      const { operation } = this.order.shift()!;
      for (const member of this.members.values()) member.core.onOperation(structuredClone(operation));
    }
  }

  /** A crash: the member's undelivered messages are lost, then a view without it. */
  crash(name: string): void {
    this.members.delete(name);
    for (let index = this.order.length - 1; index >= 0; index--) if (this.order[index]!.from === name) this.order.splice(index, 1);
    this.#view();
  }

  /** A joiner gets a donor's snapshot at this point of the order. */
  join(name: string): void {
    const donor = [...this.members.values()][0]!;
    const joiner = this.#add(name, 'active');
    this.#view();
    joiner.core.restore(donor.core.snapshot());
  }

  values(): number[] {
    return [...this.members.values()].map((member) => member.core.state.value);
  }

  /** Every request answered, with the results 1..n each once. */
  expectEachCountedOnce(n: number): void {
    const results = [...this.replies.values()].map((replies) => {
      const outcome = replies[0]![1];
      expect(replies.every(([, other]) => JSON.stringify(other) === JSON.stringify(outcome))).toBe(true);
      return outcome.ok ? (outcome.result as number) : NaN;
    });
    expect(results.sort((a, b) => a - b)).toEqual(Array.from({ length: n }, (_, index) => index + 1));
    expect(this.values().every((value) => value === n)).toBe(true);
  }
}

describe('ServiceCore, active style', () => {
  it('every replica executes each request once and replies; a retry is answered from the cache', () => {
    const group = new Group('active', ['a', 'b', 'c']);
    for (let index = 0; index < 5; index++) group.request();
    group.deliver();
    group.request('increment', null, 3);
    group.deliver();
    expect(group.replies.get(3)).toHaveLength(6);
    expect(group.replies.get(3)!.every(([, outcome]) => outcome.ok && outcome.result === 3)).toBe(true);
    expect([...group.members.values()].map((member) => member.core.executions)).toEqual([5, 5, 5]);
    group.expectEachCountedOnce(5);
  });

  it('bad input: the same error everywhere and the state unchanged', () => {
    const group = new Group('active', ['a', 'b']);
    const unknown = group.request('decrement');
    const thrown = group.request('increment', { by: 'two' });
    const large = group.request('echo', 'x'.repeat(PAYLOAD_BYTES_MAX + 1));
    const proto = group.request('__proto__');
    group.deliver();
    expect(group.replies.get(unknown)!.map(([, outcome]) => outcome)).toEqual(Array(2).fill({ ok: false, error: { code: 'unknown-method', message: "unknown method 'decrement'" } }));
    expect(group.replies.get(thrown)!.map(([, outcome]) => outcome)).toEqual(Array(2).fill({ ok: false, error: { code: 'handler-error', message: 'increment: "by" must be an integer' } }));
    expect(group.replies.get(large)![0]![1]).toMatchObject({ ok: false, error: { code: 'payload-too-large' } });
    expect(group.replies.get(proto)![0]![1]).toMatchObject({ ok: false, error: { code: 'unknown-method' } });
    expect(group.values()).toEqual([0, 0]);
  });
});

describe('reply cache', () => {
  it('keeps replies until the client releases them, within a cap', () => {
    const group = new Group('active', ['a']);
    for (let index = 0; index < 5; index++) group.request();
    group.deliver();
    const core = group.members.get('a')!.core;
    expect(core.cachedReplies).toBe(5);
    group.request('get', null, 6, 5); // calls 1-4 answered
    group.deliver();
    expect(core.cachedReplies).toBe(2);
    group.request('increment', null, 5, 5); // a retry of 5: from the cache
    group.deliver();
    expect(group.replies.get(5)!.map(([, outcome]) => outcome)).toEqual([{ ok: true, result: 5 }, { ok: true, result: 5 }]);
    const capped = new ReplyCache(3);
    for (let sequence = 1; sequence <= 5; sequence++) capped.set(`client${sequence % 2}`, sequence, { ok: true, result: sequence }, '#c');
    expect(capped.entries().map(([client, sequence]) => `${client}/${sequence}`)).toEqual(['client1/5', 'client0/2', 'client0/4']);
  });
});

describe('ServiceCore, warm passive style', () => {
  it('only the primary executes; backups commit its updates; the primary replies after the commit', () => {
    const group = new Group('passive', ['a', 'b', 'c']);
    for (let index = 0; index < 4; index++) group.request();
    group.deliver();
    expect([...group.members.values()].map((member) => member.core.executions)).toEqual([4, 0, 0]);
    expect([...group.replies.values()].every((replies) => replies.length === 1 && replies[0]![0] === 'a')).toBe(true);
    group.expectEachCountedOnce(4);
  });

  it('a primary crashing with updates in flight: the next one re-executes exactly those', () => {
    const group = new Group('passive', ['a', 'b', 'c']);
    for (let index = 0; index < 6; index++) group.request();
    group.deliver(6); // the requests; a's six updates are still in the order
    group.deliver(2); // two of them are committed
    group.crash('a');
    expect(group.members.get('b')!.core.primary).toBe('b');
    // a may have died before answering what it committed: b answers again what is not released.
    expect(group.replies.get(2)!.map(([replica]) => replica)).toEqual(['a', 'b']);
    group.deliver();
    expect(group.members.get('b')!.core.executions).toBe(4);
    group.expectEachCountedOnce(6);
  });

  it('a hand-over waits for the old primary\'s updates, so nothing runs twice', () => {
    const group = new Group('passive', ['a', 'b', 'c']);
    for (let index = 0; index < 3; index++) group.request();
    group.deliver(3);
    group.order.splice(0, 0, { from: 'a', operation: { k: 'x', member: 'a' } });
    for (let index = 0; index < 3; index++) group.request();
    group.deliver(1); // the hand-over, before a's updates
    expect(group.members.get('b')!.core.primary).toBe('b');
    expect(group.members.get('b')!.core.barrierSize).toBe(3);
    group.deliver();
    const executions = [...group.members.values()].map((member) => member.core.executions);
    expect(executions).toEqual([3, 3, 0]);
    group.expectEachCountedOnce(6);
  });

  it('a crash right after a hand-over: the barrier is dropped and the pending requests run once', () => {
    const group = new Group('passive', ['a', 'b', 'c']);
    for (let index = 0; index < 3; index++) group.request();
    group.deliver(3);
    group.order.splice(0, 0, { from: 'a', operation: { k: 'x', member: 'a' } });
    group.deliver(1);
    group.crash('a');
    group.deliver();
    group.expectEachCountedOnce(3);
  });
});

describe('ServiceCore, style switch and state transfer', () => {
  it('passive to active with updates in flight: every request counted once', () => {
    const group = new Group('passive', ['a', 'b', 'c']);
    for (let index = 0; index < 4; index++) group.request();
    group.deliver(4);
    group.order.splice(1, 0, { from: 'x', operation: { k: 'w', style: 'active' } });
    group.request();
    group.deliver();
    expect(group.members.get('c')!.core.style).toBe('active');
    group.expectEachCountedOnce(5);
    group.order.push({ from: 'x', operation: { k: 'w', style: 'passive' } });
    group.request();
    group.deliver();
    group.expectEachCountedOnce(6);
  });

  it('an update arriving after a switch to active, its call already released, changes nothing', () => {
    const group = new Group('passive', ['a', 'b']);
    group.request();
    group.request();
    group.deliver(2); // a's two updates are in the order, behind the switch
    group.order.unshift({ from: 'x', operation: { k: 'w', style: 'active' } });
    group.deliver(1);
    group.request('increment', null, 3, 3); // calls 1 and 2 answered and released
    group.order.push(group.order.shift()!, group.order.shift()!); // the late updates come last
    group.deliver();
    group.expectEachCountedOnce(3);
  });

  it('a joiner restored from a snapshot continues with the group, even as the next primary', () => {
    const group = new Group('passive', ['a', 'b']);
    for (let index = 0; index < 3; index++) group.request();
    group.deliver();
    group.join('c');
    group.request();
    group.deliver();
    group.crash('a');
    group.crash('b');
    expect(group.members.get('c')!.core.primary).toBe('c');
    group.request('increment', null, 2); // a retry after the crashes: from the cache
    group.request();
    group.deliver();
    expect(group.members.get('c')!.core.executions).toBe(1);
    group.expectEachCountedOnce(5);
  });
});

describe('wire form and health', () => {
  it('decodes what it encodes and rejects what is not an operation', () => {
    const request: Operation = { k: 'q', c: 'c', n: 1, d: 1, to: '#c#d1', m: 'get', a: null };
    expect(decodeOperation(encode(request))).toEqual(request);
    expect(decodeOperation(Buffer.from('not json'))).toBeNull();
    expect(decodeOperation(Buffer.from('{"k":"q","c":"c","n":"1","d":1,"to":"#c","m":"get"}'))).toBeNull();
    expect(decodeOperation(Buffer.from('{"k":"w","style":"cold"}'))).toBeNull();
    expect(decodeOperation(Buffer.from('null'))).toBeNull();
  });

  it('reports the first threshold passed, then the hook', () => {
    const sample = { heapBytes: 300 * 1048576, eventLoopDelayMs: 12 };
    expect(assessHealth(sample, {})).toBeNull();
    expect(assessHealth(sample, { maxHeapBytes: 200 * 1048576 })).toMatch(/heap in use 300 MiB is over 200 MiB/);
    expect(assessHealth(sample, { maxEventLoopDelayMs: 10 })).toMatch(/event-loop delay p99 12.0 ms is over 10 ms/);
    expect(assessHealth(sample, { maxEventLoopDelayMs: 20, check: () => 'disk failing' })).toBe('disk failing');
  });
});
