/**
 * The primary-component rule of replicated services, on the pure parts: which views may
 * acknowledge calls, and what a ServiceCore outside the primary answers.
 */
import { describe, expect, it } from 'vitest';
import { counterHandlers, type CounterState } from '../src/apps/services/counter.js';
import { PrimaryComponent } from '../src/apps/services/primary-component.js';
import type { Outcome, Style } from '../src/apps/services/protocol.js';
import { ServiceCore } from '../src/apps/services/service-core.js';
import { StateTransfer } from '../src/apps/shared/state-transfer.js';

describe('PrimaryComponent', () => {
  it('bootstraps, then needs a majority of the last primary (half with its first name) after a network change', () => {
    const votes = new PrimaryComponent();
    expect(votes.onView(['a', 'b', 'c'], 'join')).toBe(true);
    votes.onTransitional();
    expect(votes.acknowledges).toBe(false);
    expect(votes.onView(['a'], 'network')).toBe(false);
    expect(votes.onView(['a', 'd'], 'join')).toBe(false); // a newcomer brings no vote
    const majority = new PrimaryComponent();
    majority.onView(['a', 'b', 'c'], 'join');
    majority.onTransitional();
    expect(majority.onView(['b', 'c'], 'network')).toBe(true);
    majority.onTransitional();
    expect(majority.onView(['c'], 'network')).toBe(false); // half of [b c] without b
    const tie = new PrimaryComponent();
    tie.onView(['b', 'c'], 'join');
    tie.onTransitional();
    expect(tie.onView(['b'], 'network')).toBe(true);
  });

  it('stays primary when members crash or leave inside the component', () => {
    const votes = new PrimaryComponent();
    votes.onView(['a', 'b', 'c'], 'join');
    expect(votes.onView(['b', 'c'], 'disconnect')).toBe(true);
    expect(votes.onView(['c'], 'leave')).toBe(true);
    expect(votes.lastPrimary).toEqual(['c']);
  });

  it('after a lost session, a view must win the vote again (the daemon may be cut off)', () => {
    const votes = new PrimaryComponent();
    votes.onView(['a', 'b', 'c'], 'join');
    votes.onDisconnect();
    expect(votes.onView(['a2'], 'join')).toBe(false);
    const rejoined = new PrimaryComponent();
    rejoined.onView(['a', 'b', 'c'], 'join');
    rejoined.onDisconnect();
    expect(rejoined.onView(['b', 'c', 'a2'], 'join')).toBe(true);
  });

  it('travels in a snapshot', () => {
    const votes = new PrimaryComponent();
    votes.onView(['a', 'b', 'c'], 'join');
    const copy = new PrimaryComponent();
    copy.restore(votes.snapshot());
    expect(copy.acknowledges).toBe(true);
    expect(copy.lastPrimary).toEqual(['a', 'b', 'c']);
  });
});

describe('StateTransfer.decided', () => {
  it('is false from a view until its last HELLO: after a merge, neither side acts on its own state before that', () => {
    const transfer = new StateTransfer();
    transfer.onView('v1', ['a'], false);
    transfer.onHello('v1', 'a', 0, 'a');
    expect(transfer.decided).toBe(true);
    transfer.onView('v2', ['a', 'b'], true);
    expect(transfer.decided).toBe(false);
    transfer.onHello('v2', 'b', 2, 'a');
    expect(transfer.decided).toBe(false);
    expect(transfer.onHello('v2', 'a', 1, 'a')).toEqual({ kind: 'receive-snapshot', donor: 'b' });
    expect(transfer.decided).toBe(true);
    expect(transfer.onView('v3', ['a', 'b'], false)).toBe(0); // the transfer was cut short
    transfer.onDisconnect();
    expect(transfer.decided).toBe(false);
  });
});

describe.each<Style>(['active', 'passive'])('%s ServiceCore across a partition', (style) => {
  function core(name: string, replies: [number, Outcome][], sent: unknown[]) {
    return new ServiceCore<CounterState>(counterHandlers, { value: 0 }, style, {
      me: () => name,
      inSync: () => true,
      reply: (_to, n, outcome) => replies.push([n, outcome]),
      multicast: (operation) => sent.push(operation),
    });
  }
  const increment = (n: number) => ({ k: 'q' as const, c: 'c', n, d: n, to: '#c', m: 'increment', a: null });

  it('outside the primary it answers not-primary and changes nothing', () => {
    const replies: [number, Outcome][] = [];
    const sent: unknown[] = [];
    const minority = core('a', replies, sent);
    minority.onView(['a', 'b', 'c'], 'join');
    minority.onTransitional();
    minority.onView(['a'], 'network');
    minority.onOperation(increment(1));
    expect(sent).toEqual([]);
    expect(minority.state.value).toBe(0);
    expect(replies).toEqual([[1, { ok: false, error: { code: 'not-primary', message: expect.stringContaining('primary') } }]]);
  });

  it('in the transitional window it applies calls but acknowledges none; a retry in the primary gets the cached reply', () => {
    const replies: [number, Outcome][] = [];
    const sent: unknown[] = [];
    const side = core('b', replies, sent);
    side.onView(['a', 'b', 'c'], 'join');
    side.onOperation(increment(1));
    side.onTransitional();
    side.onOperation(increment(2));
    if (style === 'passive') {
      // b is not the passive primary (a is): the update a sent before the partition commits call 1 here.
      side.onOperation({ k: 'u', c: 'c', n: 1, to: '#c', s: { value: 1 }, r: { ok: true, result: 1 } });
    }
    expect(replies.map(([n]) => n)).toEqual(style === 'active' ? [1] : []);
    side.onView(['b', 'c'], 'network');
    side.onOperation(increment(2));
    if (style === 'passive') for (const update of sent.splice(0)) side.onOperation(update as never);
    expect(replies.at(-1)).toEqual([2, { ok: true, result: 2 }]);
    expect(side.state.value).toBe(2);
  });
});
