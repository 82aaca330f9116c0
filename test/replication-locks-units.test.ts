/**
 * The lock table's rules without the engine: compatibility of modes and ranges, FIFO
 * fairness, timeouts and leases as ordered actions, revocation when a replica leaves the
 * primary, and snapshots — plus fast-check properties over random action sequences.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { conflicts, LockTable, type LockAction, type LockMode } from '../src/apps/replication/locks-machine.js';
import { LockMachine } from '../src/apps/replication/locks-service.js';

let counter = 0;
function acquire(owner: string, object: string, mode: LockMode, range: [number, number | null] = [0, null], wait = true): LockAction & { op: 'acquire' } {
  return { op: 'acquire', wait, id: `${owner}/i/${++counter}`, owner, incarnation: 'i', object, start: range[0], end: range[1], mode };
}

describe('LockTable', () => {
  it('grants compatible requests and queues conflicting ones', () => {
    const table = new LockTable();
    expect(table.apply(acquire('a', 'f', 'shared'))).toEqual({ state: 'granted' });
    expect(table.apply(acquire('b', 'f', 'shared'))).toEqual({ state: 'granted' });
    expect(table.apply(acquire('c', 'f', 'exclusive'))).toEqual({ state: 'queued' });
    expect(table.apply(acquire('c', 'g', 'exclusive'))).toEqual({ state: 'granted' });
    expect(table.apply(acquire('a', 'r', 'exclusive', [0, 100]))).toEqual({ state: 'granted' });
    expect(table.apply(acquire('b', 'r', 'exclusive', [100, 200]))).toEqual({ state: 'granted' });
    expect(table.apply(acquire('c', 'r', 'shared', [99, 101]))).toEqual({ state: 'queued' });
    expect(table.apply(acquire('d', 'r', 'exclusive', [150, 160], false))).toEqual({ state: 'refused', reason: 'the range is locked' });
    expect(table.apply(acquire('d', 'r', 'exclusive', [5, 3]))).toMatchObject({ state: 'refused', reason: expect.stringMatching(/range end/) as string });
    expect(table.apply({ ...acquire('d', '', 'shared') })).toMatchObject({ state: 'refused' });
  });

  it('is FIFO-fair: a shared request does not overtake a waiting exclusive one', () => {
    const table = new LockTable();
    const first = acquire('a', 'f', 'shared');
    const writer = acquire('b', 'f', 'exclusive');
    const lateReader = acquire('c', 'f', 'shared');
    table.apply(first);
    expect(table.apply(writer)).toEqual({ state: 'queued' });
    expect(table.apply(lateReader)).toEqual({ state: 'queued' });
    expect(table.apply({ op: 'release', id: first.id })).toEqual({ state: 'released' });
    const events = table.takeEvents();
    expect(events.map((event) => [event.kind, event.request.id])).toEqual([
      ['released', first.id],
      ['granted', writer.id],
    ]);
    table.apply({ op: 'release', id: writer.id });
    expect(table.takeEvents().map((event) => [event.kind, event.request.id])).toEqual([
      ['released', writer.id],
      ['granted', lateReader.id],
    ]);
  });

  it('treats timeouts and leases as ordered actions: a waiter expiry never ends a grant, a lease end never a wait', () => {
    const table = new LockTable();
    const holder = acquire('a', 'f', 'exclusive');
    const waiter = acquire('b', 'f', 'exclusive');
    table.apply(holder);
    table.apply(waiter);
    expect(table.apply({ op: 'expire', id: holder.id, held: false })).toEqual({ state: 'none' });
    expect(table.apply({ op: 'expire', id: waiter.id, held: true })).toEqual({ state: 'none' });
    expect(table.apply({ op: 'expire', id: waiter.id, held: false })).toEqual({ state: 'released' });
    expect(table.waiters('f')).toEqual([]);
    expect(table.apply({ op: 'expire', id: holder.id, held: true })).toEqual({ state: 'released' });
    expect(table.holders('f')).toEqual([]);
    expect(table.takeEvents().map((event) => [event.kind, event.held])).toEqual([
      ['expired', false],
      ['expired', true],
    ]);
  });

  it('revokes the locks and queue places of a replica that left the primary, and of an earlier incarnation', () => {
    const table = new LockTable();
    table.membersChanged(['a', 'b', 'c']);
    const held = acquire('a', 'f', 'exclusive');
    const next = acquire('b', 'f', 'exclusive');
    const queuedOfA = acquire('a', 'g', 'shared');
    table.apply(acquire('c', 'g', 'exclusive'));
    table.apply(held);
    table.apply(next);
    table.apply(queuedOfA);
    table.takeEvents();
    table.membersChanged(['b', 'c']);
    expect(table.takeEvents().map((event) => [event.kind, event.request.id, event.held])).toEqual([
      ['revoked', held.id, true],
      ['revoked', queuedOfA.id, false],
      ['granted', next.id, true],
    ]);
    expect(table.apply(acquire('a', 'h', 'shared'))).toMatchObject({ state: 'refused', reason: 'a is not in the primary component' });
    table.apply({ op: 'reset', owner: 'b', incarnation: 'new' });
    expect(table.holders('f')).toEqual([]);
  });

  it('property: no conflicting holders, no grantable waiter, and a snapshot continues identically', () => {
    const owners = ['a', 'b', 'c'];
    const step = fc.oneof(
      fc.record({
        kind: fc.constant('acquire' as const),
        owner: fc.constantFrom(...owners),
        object: fc.constantFrom('x', 'y'),
        mode: fc.constantFrom<LockMode>('shared', 'exclusive'),
        start: fc.integer({ min: 0, max: 20 }),
        length: fc.option(fc.integer({ min: 1, max: 20 })),
        wait: fc.boolean(),
      }),
      fc.record({ kind: fc.constantFrom('release' as const, 'expire-wait' as const, 'expire-lease' as const), pick: fc.nat() }),
      fc.record({ kind: fc.constant('members' as const), members: fc.subarray(owners) }),
    );
    fc.assert(
      fc.property(fc.array(step, { maxLength: 60 }), fc.nat({ max: 60 }), (steps, snapshotAt) => {
        const table = new LockTable();
        let copy: LockTable | null = null;
        const ids: string[] = [];
        steps.forEach((item, index) => {
          if (index === snapshotAt) {
            copy = new LockTable();
            copy.restore(table.snapshot());
          }
          const targets = copy === null ? [table] : [table, copy];
          if (item.kind === 'members') {
            for (const target of targets) target.membersChanged(item.members);
            return;
          }
          let action: LockAction;
          if (item.kind === 'acquire') {
            const request = acquire(item.owner, item.object, item.mode, [item.start, item.length === null ? null : item.start + item.length], item.wait);
            ids.push(request.id);
            action = request;
          } else {
            const id = ids[item.pick % Math.max(1, ids.length)] ?? 'none';
            action = item.kind === 'release' ? { op: 'release', id } : { op: 'expire', id, held: item.kind === 'expire-lease' };
          }
          const results = targets.map((target) => JSON.stringify(target.apply(action)));
          expect(new Set(results).size).toBe(1);
          for (const object of ['x', 'y']) {
            const holders = table.holders(object);
            holders.forEach((a, i) => holders.slice(i + 1).forEach((b) => expect(conflicts(a, b)).toBe(false)));
            const waiters = table.waiters(object);
            waiters.forEach((waiter, i) => {
              const blocked = holders.some((held) => conflicts(held, waiter)) || waiters.slice(0, i).some((earlier) => conflicts(earlier, waiter));
              expect(blocked).toBe(true);
            });
          }
        });
        if (copy !== null) expect((copy as LockTable).snapshot().equals(table.snapshot())).toBe(true);
      }),
      { numRuns: 200 },
    );
  });
});

describe('LockMachine', () => {
  it('answers malformed actions with a refusal, never a throw', () => {
    const machine = new LockMachine();
    const results = machine.applyBatch([
      { position: 1, action: Buffer.from('{') },
      { position: 2, action: Buffer.from('{"op":"steal"}') },
      { position: 3, action: Buffer.from(JSON.stringify(acquire('a', 'f', 'shared'))) },
    ]);
    expect(results.map((result) => JSON.parse(result.toString()) as unknown)).toEqual([
      { state: 'refused', reason: 'malformed lock action' },
      { state: 'refused', reason: 'malformed lock action' },
      { state: 'granted' },
    ]);
  });
});
