import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  type ClientLog,
  ClientLogRecorder,
  type EvsProperty,
  type LogEntry,
  type MembershipCause,
  type Service,
  checkEvs,
  formatViolations,
  loadLogs,
  markDisconnected,
  messageIdOf,
  openJsonLinesRecorder,
  payloadWithId,
  saveLogs,
  serviceFromTypeBits,
} from '../src/checker/index.js';

// -- a small DSL for hand-built logs ----------------------------------------------

const A = '#a#d1';
const B = '#b#d1';
const C = '#c#d2';

type Gid = [number, number, number];

const reg = (group: string, gid: Gid, members: string[], cause: MembershipCause, vsSet?: string[]): LogEntry => ({
  type: 'membership',
  kind: 'regular',
  group,
  cause,
  gid: { procId: gid[0], time: gid[1], index: gid[2] },
  members,
  ...(vsSet === undefined ? {} : { vsSet }),
});
const trans = (group: string, gid: Gid): LogEntry => ({
  type: 'membership',
  kind: 'transitional',
  group,
  gid: { procId: gid[0], time: gid[1], index: gid[2] },
});
const selfLeave = (group: string): LogEntry => ({ type: 'membership', kind: 'self-leave', group });
const sent = (id: string, service: Service, groups: string[], selfDiscard = false): LogEntry => ({ type: 'sent', id, service, groups, selfDiscard });
const data = (id: string, sender: string, service: Service, groups: string[]): LogEntry => ({ type: 'data', id, sender, service, groups });
const disconnected = (): LogEntry => ({ type: 'disconnected', reason: 'daemon died' });

function client(privateGroup: string, entries: LogEntry[]): ClientLog {
  return { session: privateGroup, privateGroup, daemon: privateGroup.split('#')[2], entries };
}

function edit(logs: ClientLog[], session: string, change: (entries: LogEntry[]) => void): ClientLog[] {
  const copy = structuredClone(logs);
  const log = copy.find((candidate) => candidate.session === session);
  if (log === undefined) throw new Error(`no session ${session}`);
  change(log.entries);
  return copy;
}

function indexOfData(entries: LogEntry[], id: string): number {
  const index = entries.findIndex((entry) => entry.type === 'data' && entry.id === id);
  if (index < 0) throw new Error(`no delivery of ${id}`);
  return index;
}

function properties(logs: ClientLog[], options = {}): EvsProperty[] {
  return [...new Set(checkEvs(logs, options).map((violation) => violation.property))].sort();
}

function expectClean(logs: ClientLog[], options = {}): void {
  const violations = checkEvs(logs, options);
  expect(violations, formatViolations(violations)).toEqual([]);
}

// -- correct scenarios --------------------------------------------------------------

/** A joins g, B joins, both send, A sends to B privately, B leaves. */
function joinDataLeave(): ClientLog[] {
  const g = ['g'];
  return [
    client(A, [
      { type: 'join', group: 'g' },
      reg('g', [1, 100, 1], [A], 'join', [A]),
      sent('a:0', 'AGREED', g),
      data('a:0', A, 'AGREED', g),
      reg('g', [1, 100, 2], [A, B], 'join', [B]),
      sent('a:1', 'AGREED', g),
      data('a:1', A, 'AGREED', g),
      data('b:1', B, 'SAFE', g),
      sent('a:2', 'FIFO', [B]),
      sent('a:3', 'RELIABLE', g, true),
      reg('g', [1, 100, 3], [A], 'leave', [B]),
    ]),
    client(B, [
      { type: 'join', group: 'g' },
      reg('g', [1, 100, 2], [A, B], 'join', [B]),
      data('a:1', A, 'AGREED', g),
      sent('b:1', 'SAFE', g),
      data('b:1', B, 'SAFE', g),
      data('a:2', A, 'FIFO', [B]),
      data('a:3', A, 'RELIABLE', g),
      { type: 'leave', group: 'g' },
      selfLeave('g'),
    ]),
  ];
}

const V: Gid = [1, 100, 3];
const ALL = [A, B, C];

/**
 * A and B (daemon d1) and C (d2) share g. d1 and d2 partition: each side gets
 * a TRANSITION, clean-up messages (c:2 reaches both sides) and REG+NETWORK
 * with its vs set. Then the sides merge without a TRANSITION.
 */
function partitionAndMerge(): ClientLog[] {
  const g = ['g'];
  const ab = [A, B];
  const sideD1 = (self: string, own: LogEntry[]): LogEntry[] => [
    reg('g', V, ALL, 'join', [C]),
    data('a:1', A, 'AGREED', g),
    ...own,
    data('b:1', B, 'SAFE', g),
    data('c:1', C, 'AGREED', g),
    trans('g', V),
    data('a:2', A, 'AGREED', g),
    data('c:2', C, 'AGREED', g),
    reg('g', [1, 200, 1], ab, 'network', ab),
    reg('g', [1, 300, 1], ALL, 'network', ab),
    ...(self === A ? [sent('a:3', 'AGREED', g)] : []),
    data('a:3', A, 'AGREED', g),
  ];
  return [
    client(A, [sideD1(A, [])[0], sent('a:1', 'AGREED', g), ...sideD1(A, [sent('a:2', 'AGREED', g)]).slice(1)]),
    client(B, sideD1(B, [sent('b:1', 'SAFE', g)])),
    client(C, [
      reg('g', V, ALL, 'join', [C]),
      data('a:1', A, 'AGREED', g),
      data('b:1', B, 'SAFE', g),
      sent('c:1', 'AGREED', g),
      data('c:1', C, 'AGREED', g),
      sent('c:2', 'AGREED', g),
      trans('g', V),
      data('c:2', C, 'AGREED', g),
      reg('g', [2, 201, 1], [C], 'network', [C]),
      reg('g', [1, 300, 1], ALL, 'network', [C]),
      data('a:3', A, 'AGREED', g),
    ]),
  ];
}

/** A alone on d1 and C alone on d2 merge: REG+NETWORK with two vs sets, no TRANSITION. */
function mergeOnly(): ClientLog[] {
  const g = ['g'];
  return [
    client(A, [
      reg('g', [1, 10, 1], [A], 'join', [A]),
      sent('a:1', 'SAFE', g),
      data('a:1', A, 'SAFE', g),
      reg('g', [1, 20, 1], [A, C], 'network', [A]),
      data('c:2', C, 'AGREED', g),
    ]),
    client(C, [
      reg('g', [2, 11, 1], [C], 'join', [C]),
      sent('c:1', 'SAFE', g),
      data('c:1', C, 'SAFE', g),
      reg('g', [1, 20, 1], [A, C], 'network', [C]),
      sent('c:2', 'AGREED', g),
      data('c:2', C, 'AGREED', g),
    ]),
  ];
}

/** d2 (hosting B2 and C) crashes: its clients are disconnected, A sees TRANSITION then REG+NETWORK. */
function daemonCrash(): ClientLog[] {
  const g = ['g'];
  const B2 = '#b#d2';
  const members = [A, B2, C];
  return [
    client(A, [
      reg('g', V, members, 'join', [C]),
      data('b:1', B2, 'SAFE', g),
      trans('g', V),
      data('c:1', C, 'AGREED', g),
      reg('g', [1, 200, 1], [A], 'network', [A]),
      sent('a:1', 'SAFE', g),
      data('a:1', A, 'SAFE', g),
    ]),
    client(B2, [reg('g', V, members, 'join', [C]), sent('b:1', 'SAFE', g), data('b:1', B2, 'SAFE', g), disconnected()]),
    client(C, [reg('g', V, members, 'join', [C]), data('b:1', B2, 'SAFE', g), sent('c:1', 'AGREED', g), disconnected()]),
  ];
}

describe('EVS checker: correct logs pass', () => {
  it('join, data, private message, self-discard, leave', () => {
    expectClean(joinDataLeave(), { expectQuiescent: true });
  });

  it('partition with TRANSITION, clean-up messages and vs sets, then merge', () => {
    expectClean(partitionAndMerge(), { expectQuiescent: true });
  });

  it('merge without a transitional signal', () => {
    expectClean(mergeOnly(), { expectQuiescent: true });
  });

  it('daemon crash: disconnected clients are excused', () => {
    expectClean(daemonCrash(), { expectQuiescent: true });
  });

  it('a gid reused after the group emptied is not a disagreement', () => {
    const g = ['g'];
    expectClean([
      client(A, [
        reg('g', [1, 5, 1], [A], 'join', [A]),
        selfLeave('g'),
        reg('g', [1, 5, 2], [A, B], 'join', [A]),
        sent('a:1', 'AGREED', g),
        data('a:1', A, 'AGREED', g),
      ]),
      client(B, [reg('g', [1, 5, 1], [B], 'join', [B]), reg('g', [1, 5, 2], [A, B], 'join', [A]), data('a:1', A, 'AGREED', g)]),
    ], { expectQuiescent: true });
  });
});

// -- broken logs: each must be reported under the right property --------------------------

describe('EVS checker: violations are reported', () => {
  it('view disagreement', () => {
    const logs = edit(joinDataLeave(), B, (entries) => {
      entries[1] = reg('g', [1, 100, 2], [A, B, '#x#d3'], 'join', [B]);
    });
    expect(properties(logs)).toContain('view-agreement');
    const violation = checkEvs(logs).find((v) => v.property === 'view-agreement');
    expect(violation?.message).toContain('g@1.100.2');
  });

  it('member list without the receiver', () => {
    const logs = edit(mergeOnly(), A, (entries) => {
      entries[0] = reg('g', [1, 10, 1], [C], 'join', [A]);
    });
    expect(properties(logs)).toContain('view-agreement');
  });

  it('AGREED order inversion, across groups', () => {
    const logs = [
      client(A, [reg('g', [1, 1, 1], [A, B], 'join', [B]), reg('h', [1, 1, 1], [A, B], 'join', [B]), sent('a:1', 'AGREED', ['g']), data('a:1', A, 'AGREED', ['g']), data('b:1', B, 'SAFE', ['h'])]),
      client(B, [reg('g', [1, 1, 1], [A, B], 'join', [B]), reg('h', [1, 1, 1], [A, B], 'join', [B]), sent('b:1', 'SAFE', ['h']), data('b:1', B, 'SAFE', ['h']), data('a:1', A, 'AGREED', ['g'])]),
    ];
    expect(properties(logs)).toEqual(['total-order']);
    const [violation] = checkEvs(logs);
    expect(violation.ids?.sort()).toEqual(['a:1', 'b:1']);
  });

  it('a three-client cycle with no pairwise inversion', () => {
    const g = ['g'];
    const view = reg('g', [1, 1, 1], ALL, 'join', [C]);
    const logs = [
      client(A, [view, sent('a:1', 'AGREED', g), data('a:1', A, 'AGREED', g), data('b:1', B, 'AGREED', g)]),
      client(B, [view, sent('b:1', 'AGREED', g), data('b:1', B, 'AGREED', g), data('c:1', C, 'AGREED', g)]),
      client(C, [view, sent('c:1', 'AGREED', g), data('c:1', C, 'AGREED', g), data('a:1', A, 'AGREED', g)]),
    ];
    // Each pair shares one message only; the checker still finds the cycle.
    expect(properties(logs, { truncated: true })).toEqual(['total-order']);
  });

  it('FIFO break', () => {
    const g = ['g'];
    const view = reg('g', [1, 1, 1], [A, B], 'join', [B]);
    const logs = [
      client(A, [view, sent('a:1', 'FIFO', g), sent('a:2', 'FIFO', g), data('a:1', A, 'FIFO', g), data('a:2', A, 'FIFO', g)]),
      client(B, [view, data('a:2', A, 'FIFO', g), data('a:1', A, 'FIFO', g)]),
    ];
    expect(properties(logs)).toEqual(['fifo']);
  });

  it('no ordering is required of RELIABLE messages', () => {
    const g = ['g'];
    const view = reg('g', [1, 1, 1], [A, B], 'join', [B]);
    expectClean([
      client(A, [view, sent('a:1', 'RELIABLE', g), sent('a:2', 'RELIABLE', g), data('a:1', A, 'RELIABLE', g), data('a:2', A, 'RELIABLE', g)]),
      client(B, [view, data('a:2', A, 'RELIABLE', g), data('a:1', A, 'RELIABLE', g)]),
    ]);
  });

  it('causal break', () => {
    const g = ['g'];
    const view = reg('g', [1, 1, 1], ALL, 'join', [C]);
    const logs = [
      client(A, [view, sent('a:1', 'CAUSAL', g), data('a:1', A, 'CAUSAL', g), data('b:1', B, 'CAUSAL', g)]),
      client(B, [view, data('a:1', A, 'CAUSAL', g), sent('b:1', 'CAUSAL', g), data('b:1', B, 'CAUSAL', g)]),
      client(C, [view, data('b:1', B, 'CAUSAL', g), data('a:1', A, 'CAUSAL', g)]),
    ];
    expect(properties(logs)).toEqual(['causal']);
    expect(checkEvs(logs)[0].message).toContain('a:1 causally precedes b:1');
  });

  it('causal chain through a RELIABLE message', () => {
    const g = ['g'];
    const view = reg('g', [1, 1, 1], ALL, 'join', [C]);
    const logs = [
      client(A, [view, sent('a:1', 'AGREED', g), data('a:1', A, 'AGREED', g), data('b:1', B, 'RELIABLE', g), data('c:1', C, 'AGREED', g)]),
      client(B, [view, data('a:1', A, 'AGREED', g), sent('b:1', 'RELIABLE', g), data('b:1', B, 'RELIABLE', g), data('c:1', C, 'AGREED', g)]),
      client(C, [view, data('b:1', B, 'RELIABLE', g), sent('c:1', 'AGREED', g), data('c:1', C, 'AGREED', g), data('a:1', A, 'AGREED', g)]),
    ];
    expect(properties(logs)).toContain('causal');
  });

  it('missing self-delivery', () => {
    const logs = edit(joinDataLeave(), A, (entries) => {
      entries.splice(indexOfData(entries, 'a:1'), 1);
    });
    expect(properties(logs)).toEqual(['self-delivery']);
  });

  it('no self-delivery needed after a leave request, after disconnection, or for UNRELIABLE', () => {
    const g = ['g'];
    expectClean([
      client(A, [reg('g', [1, 1, 1], [A], 'join', [A]), sent('a:1', 'UNRELIABLE', g), { type: 'leave', group: 'g' }, sent('a:2', 'AGREED', g), selfLeave('g')]),
      client(C, [reg('g', [2, 1, 1], [C], 'join', [C]), sent('c:1', 'AGREED', g), disconnected()]),
    ]);
  });

  it('SELF_DISCARD message delivered back to its sender', () => {
    const logs = edit(joinDataLeave(), A, (entries) => {
      entries.splice(entries.length - 1, 0, data('a:3', A, 'RELIABLE', ['g']));
    });
    expect(properties(logs)).toEqual(['self-delivery']);
  });

  it('SAFE violation: a member that saw the transitional signal misses an early SAFE message', () => {
    const logs = edit(partitionAndMerge(), C, (entries) => {
      entries.splice(indexOfData(entries, 'b:1'), 1);
    });
    expect(properties(logs)).toEqual(['safe']);
    expect(checkEvs(logs)[0].message).toContain('b:1');
  });

  it('virtual synchrony violation: members moving together deliver different sets', () => {
    const logs = edit(partitionAndMerge(), B, (entries) => {
      entries.splice(indexOfData(entries, 'c:2'), 1);
    });
    expect(properties(logs)).toEqual(['virtual-synchrony']);
    const [violation] = checkEvs(logs);
    expect(violation.ids).toEqual(['c:2']);
    expect(violation.clients.sort()).toEqual([A, B].sort());
  });

  it('virtual synchrony over a lightweight (join) change', () => {
    const g = ['g'];
    const v1 = reg('g', [1, 100, 1], [A, B], 'join', [B]);
    const v2 = reg('g', [1, 100, 2], [A, B, C], 'join', [C]);
    const logs = [
      client(A, [v1, sent('a:1', 'RELIABLE', g, true), sent('a:2', 'AGREED', g), data('a:2', A, 'AGREED', g), v2, data('c:1', C, 'AGREED', g)]),
      client(B, [v1, data('a:1', A, 'RELIABLE', g), data('a:2', A, 'AGREED', g), v2, data('c:1', C, 'AGREED', g)]),
      client(C, [v2, sent('c:1', 'AGREED', g), data('c:1', C, 'AGREED', g)]),
    ];
    expectClean(logs, { expectQuiescent: true });
    // a:1 was self-discarded by A, so only B could have it: dropping it is fine.
    expectClean(edit(logs, B, (entries) => void entries.splice(indexOfData(entries, 'a:1'), 1)));
    // B delivering a:2 only after the join is a virtual synchrony violation.
    const late = edit(logs, B, (entries) => {
      const [moved] = entries.splice(indexOfData(entries, 'a:2'), 1);
      entries.splice(indexOfData(entries, 'c:1'), 0, moved);
    });
    expect(properties(late)).toEqual(['virtual-synchrony']);
  });

  it('transitional signal after the next regular view', () => {
    const logs = edit(partitionAndMerge(), A, (entries) => {
      const at = entries.findIndex((entry) => entry.type === 'membership' && entry.kind === 'transitional');
      const [signal] = entries.splice(at, 1);
      const regular = entries.findIndex((entry) => entry.type === 'membership' && entry.kind === 'regular' && entry.gid.time === 200);
      entries.splice(regular + 1, 0, signal);
    });
    expect(properties(logs)).toContain('transitional-signal');
  });

  it('two transitional signals in one view', () => {
    const logs = edit(daemonCrash(), A, (entries) => {
      entries.splice(3, 0, trans('g', V));
    });
    expect(properties(logs)).toEqual(['transitional-signal']);
  });

  it('clean-up senders outside the vs set only in strict mode', () => {
    expectClean(partitionAndMerge());
    expect(properties(partitionAndMerge(), { strictCleanupSenders: true })).toEqual(['transitional-signal']);
  });

  it('duplicate delivery', () => {
    const logs = edit(joinDataLeave(), B, (entries) => {
      entries.splice(indexOfData(entries, 'a:1') + 1, 0, data('a:1', A, 'AGREED', ['g']));
    });
    expect(properties(logs)).toEqual(['no-duplication']);
  });

  it('created message', () => {
    const logs = edit(joinDataLeave(), B, (entries) => {
      entries.splice(3, 0, data('a:77', A, 'AGREED', ['g']));
    });
    expect(properties(logs)).toContain('no-creation');
  });

  it('delivered message with a different service or sender', () => {
    const logs = edit(joinDataLeave(), B, (entries) => {
      entries[indexOfData(entries, 'a:1')] = data('a:1', C, 'SAFE', ['g']);
    });
    expect(properties(logs)).toEqual(['no-creation']);
  });

  it('delivery to a non-member', () => {
    const logs = edit(joinDataLeave(), B, (entries) => {
      entries.splice(1, 0, data('a:0', A, 'AGREED', ['g']));
    });
    expect(properties(logs)).toEqual(['delivery-to-members']);
  });

  it('views installed in opposite orders', () => {
    const logs = [
      client(A, [reg('g', [1, 1, 1], [A, B], 'join', [B]), reg('h', [1, 1, 1], [A, B], 'join', [B])]),
      client(B, [reg('h', [1, 1, 1], [A, B], 'join', [B]), reg('g', [1, 1, 1], [A, B], 'join', [B])]),
    ];
    expect(properties(logs)).toEqual(['view-sequence']);
    expect(properties(logs, { crossGroupViewOrder: false })).toEqual([]);
  });

  it('gid index that does not follow a join', () => {
    const logs = edit(joinDataLeave(), A, (entries) => {
      entries[entries.length - 1] = reg('g', [1, 100, 5], [A], 'leave', [B]);
    });
    expect(properties(logs)).toContain('view-sequence');
  });

  it('a view installed twice', () => {
    const logs = edit(mergeOnly(), A, (entries) => {
      entries.push(reg('g', [1, 10, 1], [A], 'network', [A]));
    });
    expect(properties(logs)).toContain('view-sequence');
  });

  it('no convergence after the heal', () => {
    const logs = partitionAndMerge().map((log) => ({ ...log, entries: log.entries.filter((entry) => !(entry.type === 'membership' && entry.kind === 'regular' && entry.gid.time === 300) && !(entry.type === 'data' && entry.id === 'a:3') && !(entry.type === 'sent' && entry.id === 'a:3')) }));
    expectClean(logs);
    expect(properties(logs, { expectQuiescent: true })).toEqual(['quiescence']);
  });

  it('a message sent in the final view missing at a member', () => {
    const logs = edit(mergeOnly(), A, (entries) => {
      entries.pop();
    });
    expect(properties(logs, { expectQuiescent: true })).toEqual(['quiescence']);
    expect(properties(logs)).toEqual([]);
  });

  it('entries after disconnection and malformed entries', () => {
    const logs = edit(daemonCrash(), '#b#d2', (entries) => {
      entries.push(data('b:1', '#b#d2', 'SAFE', ['g']));
      entries.splice(1, 0, { type: 'bogus' } as unknown as LogEntry);
    });
    expect(properties(logs)).toEqual(['log-format']);
  });
});

describe('EVS log recorder and files', () => {
  it('records, saves and loads', () => {
    const alice = new ClientLogRecorder({ privateGroup: A, daemon: 'd1' });
    alice.joinRequested('g');
    alice.membership({ kind: 'regular', group: 'g', cause: 'join', gid: { procId: 1, time: 2, index: 1 }, members: [A], vsSet: [A] });
    const id = alice.sent({ service: 'AGREED', groups: ['g'] });
    expect(id).toBe(`${A}:1`);
    alice.delivered({ id, sender: A, service: 'AGREED', groups: ['g'] });
    alice.leaveRequested('g');
    alice.membership({ kind: 'self-leave', group: 'g' });
    alice.closed('client exit');
    alice.delivered({ id: 'late', sender: A, service: 'AGREED', groups: ['g'] });
    const log = alice.log();
    expect(log.entries.map((entry) => entry.type)).toEqual(['join', 'membership', 'sent', 'data', 'leave', 'membership', 'disconnected']);
    const directory = mkdtempSync(join(tmpdir(), 'evs-'));
    try {
      const path = join(directory, 'run.json');
      saveLogs(path, [log]);
      const loaded = loadLogs(path);
      expect(loaded).toEqual([log]);
      expect(checkEvs(loaded)).toEqual([]);
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  });

  it('streams JSON Lines that survive a kill, and marks killed sessions', () => {
    const directory = mkdtempSync(join(tmpdir(), 'evs-'));
    try {
      const path = join(directory, 'a.jsonl');
      const alice = openJsonLinesRecorder(path, { privateGroup: A, daemon: 'd1', session: 'alice@1' });
      alice.membership({ kind: 'regular', group: 'g', cause: 'join', gid: { procId: 1, time: 2, index: 1 }, members: [A], vsSet: [A] });
      const id = alice.sent({ service: 'SAFE', groups: ['g'] });
      // Killed before the message came back, in the middle of writing a line:
      appendFileSync(path, '{"type":"da');
      const [loaded] = loadLogs(path);
      expect(loaded.session).toBe('alice@1');
      expect(loaded.entries).toHaveLength(2);
      expect(properties([loaded])).toEqual(['self-delivery']);
      const killed = markDisconnected(loaded);
      expect(killed.entries.at(-1)).toEqual({ type: 'disconnected', reason: 'process killed' });
      expect(markDisconnected(killed)).toBe(killed);
      expect(checkEvs([killed])).toEqual([]);
      expect(id).toBe('alice@1:1');
      alice.closed(); // releases the file descriptor
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  });

  it('records client-library messages and payload ids', () => {
    const bob = new ClientLogRecorder({ privateGroup: B, daemon: 'd1', session: 'bob-1' });
    const gid = { procId: 1, time: 2, index: 1 };
    bob.received({ kind: 'membership', group: 'g', cause: 'join', gid, members: [B], mySet: [B] });
    const id = bob.sent({ service: 'agreed', groups: ['g'] });
    expect(id).toBe('bob-1:1');
    const payload = payloadWithId(id, 100);
    expect(payload.length).toBeGreaterThan(100);
    expect(messageIdOf(payload)).toBe(id);
    bob.received({ kind: 'data', sender: B, groups: ['g'], service: 'agreed', data: payload });
    bob.received({ kind: 'reject' });
    bob.received({ kind: 'membership', group: 'g', cause: 'transition', gid, members: [], mySet: [] });
    bob.received({ kind: 'membership', group: 'g', cause: 'network', gid: { ...gid, time: 3 }, members: [B], mySet: [B] });
    bob.received({ kind: 'membership', group: 'g', cause: 'self-leave', gid, members: [], mySet: [] });
    const log = bob.log();
    expect(log.entries).toEqual([
      reg('g', [1, 2, 1], [B], 'join', [B]),
      sent(id, 'AGREED', ['g']),
      data(id, B, 'AGREED', ['g']),
      trans('g', [1, 2, 1]),
      reg('g', [1, 3, 1], [B], 'network', [B]),
      selfLeave('g'),
    ]);
    expect(checkEvs([log])).toEqual([]);
  });

  it('maps service type bits', () => {
    expect(serviceFromTypeBits(0x20 | 0x40)).toBe('SAFE');
    expect(serviceFromTypeBits(0x04)).toBe('FIFO');
    expect(serviceFromTypeBits(0x1100)).toBeUndefined();
  });
});
