/**
 * The session cache's pure parts: the deterministic map (same operations, same
 * order → same state, whatever the reads), state-transfer decisions, the
 * memcached parser, exptime rules and the ticket-key ring.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { decodeMapOperation, encodeMapOperation, ReplicatedMap, type MapOperation } from '../src/apps/shared/replicated-map.js';
import { StateTransfer } from '../src/apps/shared/state-transfer.js';
import { absoluteExpiryMs, MemcacheParser, type MemcacheCommand } from '../src/apps/session-cache/memcache-protocol.js';
import { newTicketKey, TicketKeyRing } from '../src/apps/session-cache/ticket-keys.js';

const operation = fc.oneof(
  fc.record({
    kind: fc.constantFrom('set' as const, 'add' as const, 'replace' as const),
    key: fc.constantFrom('a', 'b', 'c', 'd', 'e'),
    value: fc.uint8Array({ maxLength: 300 }).map((bytes) => Buffer.from(bytes)),
    flags: fc.nat(),
    expiresAtMs: fc.constantFrom(0, 1500, 3000),
    atMs: fc.integer({ min: 0, max: 4000 }),
  }),
  fc.record({ kind: fc.constant('delete' as const), key: fc.constantFrom('a', 'b', 'c', 'd', 'e'), atMs: fc.integer({ min: 0, max: 4000 }) }),
);

function parseAll(input: string | Buffer, valueBytesMax = 1024): MemcacheCommand[] {
  const parser = new MemcacheParser(valueBytesMax);
  parser.push(Buffer.from(input));
  const commands: MemcacheCommand[] = [];
  for (let command = parser.next(); command !== null; command = parser.next()) commands.push(command);
  return commands;
}

describe('ReplicatedMap', () => {
  it('replicas applying the same operations agree, and a snapshot restores the same state', () => {
    fc.assert(
      fc.property(fc.array(operation, { maxLength: 60 }), fc.integer({ min: 200, max: 2000 }), (operations, limit) => {
        const first = new ReplicatedMap(limit);
        const second = new ReplicatedMap(limit);
        const results = operations.map((op) => first.apply(op));
        for (const [index, op] of operations.entries()) {
          second.get(op.key, 2000); // reads change nothing
          expect(second.apply(decodeMapOperation(encodeMapOperation(op)))).toBe(results[index]);
        }
        expect(second.snapshot().equals(first.snapshot())).toBe(true);
        const restored = new ReplicatedMap(limit);
        restored.restore(first.snapshot());
        expect(restored.snapshot().equals(first.snapshot())).toBe(true);
        expect(first.stats.bytes).toBeLessThanOrEqual(limit);
      }),
    );
  });

  it('never serves an expired entry and follows add/replace rules at the operation time', () => {
    const map = new ReplicatedMap(10_000);
    const set = (key: string, expiresAtMs: number, atMs: number, kind: MapOperation['kind'] = 'set'): string =>
      map.apply(kind === 'delete' ? { kind, key, atMs } : { kind, key, value: Buffer.from('v'), flags: 0, expiresAtMs, atMs });
    expect(set('k', 1000, 0)).toBe('stored');
    expect(map.get('k', 999)).toBeDefined();
    expect(map.get('k', 1000)).toBeUndefined();
    expect(set('k', 0, 500, 'add')).toBe('not-stored');
    expect(set('k', 0, 1000, 'add')).toBe('stored');
    expect(set('gone', 0, 0, 'replace')).toBe('not-stored');
    expect(set('k', 0, 1001, 'delete')).toBe('deleted');
    expect(set('k', 0, 1002, 'delete')).toBe('not-found');
  });

  it('evicts least recently stored first and refuses an entry larger than the cap', () => {
    const map = new ReplicatedMap(3 * (1 + 100 + 48));
    for (const key of ['a', 'b', 'c']) map.apply({ kind: 'set', key, value: Buffer.alloc(100), flags: 0, expiresAtMs: 0, atMs: 0 });
    map.apply({ kind: 'set', key: 'a', value: Buffer.alloc(100), flags: 0, expiresAtMs: 0, atMs: 1 });
    map.apply({ kind: 'set', key: 'd', value: Buffer.alloc(100), flags: 0, expiresAtMs: 0, atMs: 2 });
    expect(map.get('b', 3)).toBeUndefined();
    expect(map.get('a', 3)).toBeDefined();
    expect(map.stats.evictions).toBe(1);
    expect(map.apply({ kind: 'set', key: 'huge', value: Buffer.alloc(1000), flags: 0, expiresAtMs: 0, atMs: 3 })).toBe('too-large');
  });
});

describe('StateTransfer', () => {
  it('a joiner receives from the first synced member and replays what came after the snapshot point', () => {
    const old = new StateTransfer();
    old.standing = 2;
    const joiner = new StateTransfer();
    const members = ['#a#d1', '#b#d2'];
    expect(old.onView('v1', members, false)).toBe(2);
    expect(joiner.onView('v1', members, false)).toBe(0);
    // HELLOs in the agreed order: the joiner's first.
    expect(joiner.onHello('v1', '#b#d2', 0, '#b#d2')).toEqual({ kind: 'wait' });
    expect(old.onHello('v1', '#b#d2', 0, '#a#d1')).toEqual({ kind: 'wait' });
    expect(joiner.onHello('v1', '#a#d1', 2, '#b#d2')).toEqual({ kind: 'receive-snapshot', donor: '#a#d1' });
    expect(old.onHello('v1', '#a#d1', 2, '#a#d1')).toEqual({ kind: 'send-snapshot' });
    joiner.onOperation(Uint8Array.of(7));
    expect(joiner.onSnapshotChunk('v1', 0, 2, Uint8Array.of(1))).toBeNull();
    expect(joiner.onSnapshotChunk('v1', 1, 2, Uint8Array.of(2))).toEqual({ snapshot: Buffer.of(1, 2), replay: [Uint8Array.of(7)] });
    expect(joiner.synced).toBe(true);
  });

  it('needs no transfer when everyone is synced, and a lone newcomer is in sync at once', () => {
    const member = new StateTransfer();
    member.standing = 2;
    member.onView('v2', ['#a#d1', '#b#d2'], false);
    member.onHello('v2', '#b#d2', 2, '#a#d1');
    expect(member.onHello('v2', '#a#d1', 2, '#a#d1')).toEqual({ kind: 'in-sync' });
    const alone = new StateTransfer();
    alone.onView('v3', ['#z#d9'], false);
    expect(alone.onHello('v3', '#z#d9', 0, '#z#d9')).toEqual({ kind: 'in-sync' });
    expect(alone.synced).toBe(true);
    expect(alone.standing).toBe(1);
    alone.onDisconnect();
    expect(alone.synced).toBe(false);
  });

  it('a cache that was alone for a moment after its daemon restarted does not overwrite the group at the merge', () => {
    const group = new StateTransfer();
    group.standing = 2;
    const back = new StateTransfer();
    back.onView('solo', ['#b#d2'], false);
    back.onHello('solo', '#b#d2', 0, '#b#d2');
    expect(back.standing).toBe(1);
    const merged = ['#b#d2', '#a#d1'];
    back.onView('merged', merged, true);
    group.onView('merged', merged, true);
    for (const member of [back, group]) member.onHello('merged', '#b#d2', 1, member === back ? '#b#d2' : '#a#d1');
    expect(back.onHello('merged', '#a#d1', 2, '#b#d2')).toEqual({ kind: 'receive-snapshot', donor: '#a#d1' });
    expect(group.onHello('merged', '#a#d1', 2, '#a#d1')).toEqual({ kind: 'send-snapshot' });
  });

  it('ignores HELLOs of another view and chunks of an abandoned transfer', () => {
    const joiner = new StateTransfer();
    joiner.onView('v1', ['#a#d1', '#b#d2'], false);
    expect(joiner.onHello('v0', '#a#d1', 2, '#b#d2')).toEqual({ kind: 'wait' });
    joiner.onHello('v1', '#a#d1', 2, '#b#d2');
    joiner.onHello('v1', '#b#d2', 0, '#b#d2');
    joiner.onView('v2', ['#a#d1', '#b#d2'], false);
    expect(joiner.onSnapshotChunk('v1', 0, 1, Uint8Array.of(1))).toBeNull();
  });
});

describe('MemcacheParser', () => {
  it('parses commands split anywhere', () => {
    const input = 'set k 5 0 3\r\nabc\r\nget k j\r\ngets k\r\ndelete k 0 noreply\r\nadd x 0 60 1 noreply\r\nz\r\nversion\r\n';
    const whole = parseAll(input);
    expect(whole.map((command) => command.name)).toEqual(['set', 'get', 'gets', 'delete', 'add', 'version']);
    expect(whole[0]).toMatchObject({ key: 'k', flags: 5, exptime: 0, noreply: false });
    expect((whole[0] as { value: Buffer }).value.toString()).toBe('abc');
    expect(whole[3]).toEqual({ name: 'delete', key: 'k', noreply: true });
    for (let cut = 1; cut < input.length; cut++) {
      const parser = new MemcacheParser(1024);
      const commands: MemcacheCommand[] = [];
      for (const part of [input.slice(0, cut), input.slice(cut)]) {
        parser.push(Buffer.from(part));
        for (let command = parser.next(); command !== null; command = parser.next()) commands.push(command);
      }
      expect(commands).toEqual(whole);
    }
  });

  it('answers bad input with the protocol errors and keeps in step', () => {
    const replies = (input: string, max = 1024) => parseAll(input, max).map((command) => (command.name === 'error' ? command.reply : command.name));
    expect(replies('nope\r\nversion\r\n')).toEqual(['ERROR', 'version']);
    expect(replies('set k x 0 1\r\nversion\r\n')).toEqual(['CLIENT_ERROR bad command line format', 'version']);
    expect(replies('set k 0 0 10\r\n0123456789\r\nversion\r\n', 4)).toEqual(['SERVER_ERROR object too large for cache', 'version']);
    expect(replies('set k 0 0 1\r\nabc\r\nversion\r\n')).toEqual(['CLIENT_ERROR bad data chunk', 'version']);
    expect(replies('delete k 1\r\n')[0]).toMatch(/^CLIENT_ERROR bad command line format/);
    expect(parseAll('x'.repeat(3000))).toEqual([{ name: 'error', reply: 'CLIENT_ERROR line too long', close: true }]);
  });

  it("applies memcached's exptime rules", () => {
    expect(absoluteExpiryMs(0, 5000)).toBe(0);
    expect(absoluteExpiryMs(-1, 5000)).toBeLessThan(5000);
    expect(absoluteExpiryMs(60, 5000)).toBe(65_000);
    expect(absoluteExpiryMs(2_000_000_000, 5000)).toBe(2_000_000_000_000);
  });
});

describe('TicketKeyRing', () => {
  it('switches at the activation time, moves forward only and keeps three keys', () => {
    const ring = new TicketKeyRing();
    ring.apply(newTicketKey(1000));
    ring.apply(newTicketKey(2000));
    expect(ring.current(999)).toBeUndefined();
    expect(ring.current(1500)?.activateAtMs).toBe(1000);
    expect(ring.current(2000)?.activateAtMs).toBe(2000);
    ring.apply(newTicketKey(1500));
    expect(ring.keys.length).toBe(2);
    ring.apply(newTicketKey(3000));
    ring.apply(newTicketKey(4000));
    expect(ring.keys.map((key) => key.activateAtMs)).toEqual([2000, 3000, 4000]);
    const copy = new TicketKeyRing();
    copy.restore(ring.snapshot());
    expect(copy.snapshot().equals(ring.snapshot())).toBe(true);
    expect(ring.nextActivationMs(2500)).toBe(3000);
  });
});

describe('dependencies', () => {
  it('the session cache and the shared app modules use only the public client API of tspread', () => {
    for (const folder of ['src/apps/session-cache', 'src/apps/shared']) {
      for (const name of readdirSync(folder).filter((file) => file.endsWith('.ts'))) {
        const imports = [...readFileSync(join(folder, name), 'utf8').matchAll(/from '(\.\.\/\.\.\/[^']+)'/g)].map((match) => match[1]);
        for (const path of imports) expect(path, `${folder}/${name}`).toBe('../../client/index.js');
      }
    }
  });
});
