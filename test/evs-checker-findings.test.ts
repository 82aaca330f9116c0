// False positives of the EVS checker found by the whole-daemon chaos runs
// (test/evs-chaos.test.ts), pinned here with a true positive next to each.
//  - gid reuse by a reconnected client (same private group, new session): Spread
//    recreates an emptied group with index 1 under the same membership id (§5.5), so a
//    client that disconnects and comes back can see the same gids again, with other
//    member lists or another cause.
//  - a leave asked for after a join whose view has not arrived yet is not a no-op.
//  - an emptied group that reaches the same gid and member list again, while an
//    installer of each incarnation left no record of it, is two instances, not one;
//    and member lists of such incarnations are no disagreement.
import { describe, expect, it } from 'vitest';
import { checkEvs, ClientLogCollection, formatViolations } from '../src/checker/index.js';

const gid = (index: number) => ({ procId: 1, time: 1, index });

describe('gid reuse across sessions of one private group', () => {
  it('same gid and members, caused by network for the old session and by join for the new one', () => {
    const logs = new ClientLogCollection();
    const a = logs.open({ privateGroup: '#x#d1', daemon: 'd1' });
    a.membership({ kind: 'regular', group: 'g', cause: 'network', gid: gid(1), members: ['#x#d1'], vsSet: ['#x#d1'] });
    a.closed('client disconnect');
    const again = logs.open({ privateGroup: '#x#d1', daemon: 'd1' });
    again.joinRequested('g');
    again.membership({ kind: 'regular', group: 'g', cause: 'join', gid: gid(1), members: ['#x#d1'], vsSet: ['#x#d1'] });
    const violations = checkEvs(logs.logs(), { expectQuiescent: true });
    expect(violations, formatViolations(violations)).toEqual([]);
  });

  it('same gid with other members in the next incarnation', () => {
    const logs = new ClientLogCollection();
    const x = logs.open({ privateGroup: '#x#d1', daemon: 'd1' });
    const y = logs.open({ privateGroup: '#y#d1', daemon: 'd1' });
    x.joinRequested('g');
    x.membership({ kind: 'regular', group: 'g', cause: 'join', gid: gid(1), members: ['#x#d1'], vsSet: ['#x#d1'] });
    y.joinRequested('g');
    for (const r of [x, y]) r.membership({ kind: 'regular', group: 'g', cause: 'join', gid: gid(2), members: ['#x#d1', '#y#d1'], vsSet: ['#y#d1'] });
    x.closed('client disconnect');
    y.membership({ kind: 'regular', group: 'g', cause: 'disconnect', gid: gid(3), members: ['#y#d1'], vsSet: ['#x#d1'] });
    y.leaveRequested('g');
    y.membership({ kind: 'self-leave', group: 'g' });
    const x2 = logs.open({ privateGroup: '#x#d1', daemon: 'd1' });
    const z = logs.open({ privateGroup: '#z#d1', daemon: 'd1' });
    x2.joinRequested('g');
    x2.membership({ kind: 'regular', group: 'g', cause: 'join', gid: gid(1), members: ['#x#d1'], vsSet: ['#x#d1'] });
    z.joinRequested('g');
    for (const r of [x2, z]) r.membership({ kind: 'regular', group: 'g', cause: 'join', gid: gid(2), members: ['#x#d1', '#z#d1'], vsSet: ['#z#d1'] });
    const violations = checkEvs(logs.logs(), { expectQuiescent: true });
    expect(violations, formatViolations(violations)).toEqual([]);
  });

  it('still reports two live sessions that disagree on one gid', () => {
    const logs = new ClientLogCollection();
    const p = logs.open({ privateGroup: '#p#d1', daemon: 'd1' });
    const q = logs.open({ privateGroup: '#q#d2', daemon: 'd2' });
    p.membership({ kind: 'regular', group: 'g', cause: 'network', gid: gid(1), members: ['#p#d1', '#q#d2'], vsSet: ['#p#d1'] });
    q.membership({ kind: 'regular', group: 'g', cause: 'network', gid: gid(1), members: ['#p#d1', '#q#d2', '#r#d3'], vsSet: ['#q#d2'] });
    expect(checkEvs(logs.logs()).map((v) => v.property)).toContain('view-agreement');
  });
});

describe('a leave asked for before the join view arrives', () => {
  function joinThenLeave(leaveFirst: boolean) {
    const logs = new ClientLogCollection();
    const x = logs.open({ privateGroup: '#x#d1', daemon: 'd1' });
    if (leaveFirst) x.leaveRequested('g');
    x.joinRequested('g');
    if (!leaveFirst) x.leaveRequested('g');
    x.membership({ kind: 'regular', group: 'g', cause: 'join', gid: gid(1), members: ['#x#d1'], vsSet: ['#x#d1'] });
    x.sent({ service: 'agreed', groups: ['g'] });
    x.membership({ kind: 'self-leave', group: 'g' });
    return checkEvs(logs.logs(), { expectQuiescent: true });
  }

  it('takes effect after the join: a send after it need not come back', () => {
    const violations = joinThenLeave(false);
    expect(violations, formatViolations(violations)).toEqual([]);
  });

  it('a leave before the join was a no-op: that send must come back', () => {
    expect(joinThenLeave(true).map((v) => v.property)).toContain('self-delivery');
  });
});

describe('the same gid and member list in two incarnations, each with a silent installer', () => {
  it('is not one view: a message from the first life of a name is not owed to its second', () => {
    const logs = new ClientLogCollection();
    const p = logs.open({ privateGroup: '#p#d1', daemon: 'd1' });
    const q = logs.open({ privateGroup: '#q#d2', daemon: 'd2' });
    // Incarnation A: p, then q joins; q sends a SAFE message and closes before reading anything.
    p.joinRequested('g');
    p.membership({ kind: 'regular', group: 'g', cause: 'join', gid: gid(1), members: ['#p#d1'], vsSet: ['#p#d1'] });
    q.joinRequested('g');
    const m = q.sent({ service: 'safe', groups: ['g'] });
    q.closed('client closed the socket');
    p.membership({ kind: 'regular', group: 'g', cause: 'join', gid: gid(2), members: ['#p#d1', '#q#d2'], vsSet: ['#q#d2'] });
    p.delivered({ id: m, sender: '#q#d2', service: 'safe', groups: ['g'] });
    p.membership({ kind: 'regular', group: 'g', cause: 'disconnect', gid: gid(3), members: ['#p#d1'], vsSet: ['#q#d2'] });
    p.leaveRequested('g');
    p.membership({ kind: 'self-leave', group: 'g' });
    p.closed('client disconnect');
    // Incarnation B: q's next session, then p's next session joins and closes unread.
    const q2 = logs.open({ privateGroup: '#q#d2', daemon: 'd2' });
    q2.joinRequested('g');
    q2.membership({ kind: 'regular', group: 'g', cause: 'join', gid: gid(1), members: ['#q#d2'], vsSet: ['#q#d2'] });
    const p2 = logs.open({ privateGroup: '#p#d1', daemon: 'd1' });
    p2.joinRequested('g');
    p2.closed('client closed the socket');
    q2.membership({ kind: 'regular', group: 'g', cause: 'join', gid: gid(2), members: ['#p#d1', '#q#d2'], vsSet: ['#p#d1'] });
    q2.membership({ kind: 'regular', group: 'g', cause: 'disconnect', gid: gid(3), members: ['#q#d2'], vsSet: ['#p#d1'] });
    const violations = checkEvs(logs.logs(), { expectQuiescent: true });
    expect(violations, formatViolations(violations)).toEqual([]);
  });
});

describe('member lists of one gid in two incarnations, named by reconnected clients that recorded nothing', () => {
  it('are not a disagreement', () => {
    const logs = new ClientLogCollection();
    const q = logs.open({ privateGroup: '#q#d2', daemon: 'd2' });
    q.joinRequested('g');
    q.membership({ kind: 'regular', group: 'g', cause: 'join', gid: gid(1), members: ['#q#d2'], vsSet: ['#q#d2'] });
    const p = logs.open({ privateGroup: '#p#d1', daemon: 'd1' }); // joins, records nothing
    p.joinRequested('g');
    p.closed('client closed the socket');
    q.membership({ kind: 'regular', group: 'g', cause: 'join', gid: gid(2), members: ['#p#d1', '#q#d2'], vsSet: ['#p#d1'] });
    q.closed('client disconnect');
    // The group empties; a new incarnation under the same membership id.
    const q2 = logs.open({ privateGroup: '#q#d2', daemon: 'd2' }); // a member, records nothing
    q2.closed('client closed the socket');
    const s = logs.open({ privateGroup: '#s#d3', daemon: 'd3' });
    s.joinRequested('g');
    s.membership({ kind: 'regular', group: 'g', cause: 'join', gid: gid(1), members: ['#q#d2', '#s#d3'], vsSet: ['#s#d3'] });
    const p2 = logs.open({ privateGroup: '#p#d1', daemon: 'd1' });
    p2.joinRequested('g');
    for (const r of [p2, s]) r.membership({ kind: 'regular', group: 'g', cause: 'join', gid: gid(2), members: ['#p#d1', '#q#d2', '#s#d3'], vsSet: ['#p#d1'] });
    const violations = checkEvs(logs.logs()).filter((v) => v.property === 'view-agreement');
    expect(violations, formatViolations(violations)).toEqual([]);
  });
});
