/**
 * The replicated-SQLite pieces without the engine: the state machine (group commit, per-action
 * savepoints, the applied position, snapshots, the identity checks), the determinism guard and
 * the statement reader's grammar.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { databaseDigest } from '../src/apps/replication/sql-digest.js';
import { nondeterminismIn } from '../src/apps/replication/sql-determinism.js';
import { decodeSqlResult, encodeSqlAction, SqlMachine, StrangerDatabaseError } from '../src/apps/replication/sql-machine.js';
import { SQL_ACTION_BYTES_MAX, StatementReader } from '../src/apps/replication/sql-statements.js';
import { BoundedLineSplitter } from '../src/apps/replication/line-reader.js';

const directories: string[] = [];
const machines: SqlMachine[] = [];
afterEach(() => {
  for (const machine of machines.splice(0)) machine.close();
  for (const directory of directories.splice(0)) rmSync(directory, { recursive: true, force: true });
});

function scratch(): string {
  const directory = mkdtempSync(join(tmpdir(), 'tspread-sql-'));
  directories.push(directory);
  return directory;
}

function machine(path = ':memory:', group = 'g'): SqlMachine {
  const made = new SqlMachine({ path, group });
  machines.push(made);
  return made;
}

/** Applies single-line actions as one batch starting after `from`; returns each result's error (null = ok). */
function apply(target: SqlMachine, lines: string[], from = target.appliedPosition()): (string | null)[] {
  const batch = lines.map((line, index) => ({ position: from + index + 1, action: encodeSqlAction([line]) }));
  return target.applyBatch(batch).map((result) => decodeSqlResult(result).error);
}

describe('SqlMachine', () => {
  it('applies a batch in one transaction, records the position, and keeps a failing action from undoing the others', () => {
    const sql = machine();
    const errors = apply(sql, [
      'CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)',
      "INSERT INTO t VALUES (1, 'a')",
      "INSERT INTO t VALUES (1, 'duplicate')",
      'INSERT INTO t VALUES (2, NULL)',
      "INSERT INTO t VALUES (3, 'c')",
      'INSERT INTO nowhere VALUES (1)',
    ]);
    expect(errors[0]).toBeNull();
    expect(errors[1]).toBeNull();
    expect(errors[2]).toMatch(/UNIQUE constraint failed: t.id/);
    expect(errors[3]).toMatch(/NOT NULL constraint failed: t.v/);
    expect(errors[4]).toBeNull();
    expect(errors[5]).toMatch(/no such table: nowhere/);
    expect(sql.db.prepare('SELECT id, v FROM t ORDER BY id').all()).toEqual([
      { id: 1, v: 'a' },
      { id: 3, v: 'c' },
    ]);
    expect(sql.appliedPosition()).toBe(6);
    sql.membersChanged(['a', 'b'], 7);
    expect(sql.appliedPosition()).toBe(7);
  });

  it('skips actions it already holds (a database ahead of a lost engine log)', () => {
    const sql = machine();
    apply(sql, ['CREATE TABLE t (n)', 'INSERT INTO t VALUES (1)'], 0);
    const again = apply(sql, ['CREATE TABLE t (n)', 'INSERT INTO t VALUES (1)', 'INSERT INTO t VALUES (2)'], 0);
    expect(again).toEqual(['already applied', 'already applied', null]);
    expect(sql.db.prepare('SELECT n FROM t').pluck().all()).toEqual([1, 2]);
    expect(sql.appliedPosition()).toBe(3);
  });

  it('runs a block as one action: all of it or none of it', () => {
    const sql = machine();
    apply(sql, ['CREATE TABLE account (id INTEGER PRIMARY KEY, balance INTEGER CHECK (balance >= 0))', 'INSERT INTO account VALUES (1, 10), (2, 0)']);
    const transfer = (amount: number) => encodeSqlAction([`UPDATE account SET balance = balance + ${amount} WHERE id = 2`, `UPDATE account SET balance = balance - ${amount} WHERE id = 1`]);
    const results = sql.applyBatch([
      { position: 3, action: transfer(4) },
      { position: 4, action: transfer(7) },
    ]);
    expect(decodeSqlResult(results[0]!).error).toBeNull();
    expect(decodeSqlResult(results[1]!).error).toMatch(/CHECK constraint failed/);
    expect(sql.db.prepare('SELECT balance FROM account ORDER BY id').pluck().all()).toEqual([6, 4]);
  });

  it('refuses non-deterministic SQL the same way at every replica, and malformed actions', () => {
    const sql = machine();
    apply(sql, ["CREATE TABLE t (at TEXT, n)", "INSERT INTO t VALUES ('now', 1)", "INSERT INTO t VALUES ('2024-01-02 03:04:05', 2)"]);
    const errors = apply(sql, [
      'INSERT INTO t SELECT datetime(at), 3 FROM t WHERE n = 1',
      'INSERT INTO t SELECT datetime(at, \'+1 day\'), 4 FROM t WHERE n = 2',
      "INSERT INTO t SELECT strftime('%Y', at), 5 FROM t WHERE n = 2",
      'INSERT INTO t SELECT strftime(at), 6 FROM t WHERE n = 2',
    ]);
    expect(errors[0]).toMatch(/non-deterministic SQL refused: datetime\(\)/);
    expect(errors[1]).toBeNull();
    expect(errors[2]).toBeNull();
    expect(errors[3]).toMatch(/strftime\(\) of the current time/);
    expect(sql.db.prepare('SELECT at FROM t WHERE n = 4').pluck().get()).toBe('2024-01-03 03:04:05');
    expect(decodeSqlResult(sql.applyBatch([{ position: 9, action: Buffer.from('not json') }])[0]!).error).toMatch(/malformed action/);
    expect(apply(sql, ['INSERT INTO t VALUES (random(), 6)'])[0]).toMatch(/random\(\)/);
    expect(apply(sql, ['COMMIT'])[0]).toMatch(/only allowed as a line of its own/);
    expect(apply(sql, ['DROP TABLE tspread_replication'])[0]).toMatch(/replica's own table/);
  });

  it('keeps the applied position with the data across a reopen, and restores a snapshot into another file', () => {
    const directory = scratch();
    const first = machine(join(directory, 'a.db'));
    apply(first, ['CREATE TABLE t (k TEXT PRIMARY KEY, v BLOB)', "INSERT INTO t VALUES ('x', x'00ff')", "INSERT INTO t VALUES ('y', 2.5)"]);
    const digest = databaseDigest(first.db);
    const snapshot = first.snapshot();
    first.close();
    const reopened = machine(join(directory, 'a.db'));
    expect(reopened.appliedPosition()).toBe(3);
    expect(databaseDigest(reopened.db)).toBe(digest);

    const second = machine(join(directory, 'b.db'));
    apply(second, ['CREATE TABLE junk (a)']);
    second.restore(snapshot, 3);
    expect(second.appliedPosition()).toBe(3);
    expect(databaseDigest(second.db)).toBe(digest);
    apply(second, ["INSERT INTO t VALUES ('z', 3)"]);
    second.close();
    expect(machine(join(directory, 'b.db')).db.prepare('SELECT count(*) FROM t').pluck().get()).toBe(3);
  });

  it('refuses a stranger database, a database of another group and a schema changed outside replication', () => {
    const directory = scratch();
    const strangerPath = join(directory, 'stranger.db');
    const stranger = new Database(strangerPath);
    stranger.exec('CREATE TABLE customers (id INTEGER)');
    stranger.close();
    expect(() => machine(strangerPath)).toThrow(StrangerDatabaseError);
    expect(() => machine(strangerPath)).toThrow(/not a replica's database \(it has tables customers/);

    const ownPath = join(directory, 'own.db');
    apply(machine(ownPath, 'accounts'), ['CREATE TABLE t (a)']);
    machines.pop()!.close();
    expect(() => machine(ownPath, 'other')).toThrow(/belongs to replication group accounts, not other/);

    const edit = new Database(ownPath);
    edit.exec('CREATE TABLE sneaky (a)');
    edit.close();
    expect(() => machine(ownPath, 'accounts')).toThrow(/schema was changed outside replication/);

    const snapshotOfOther = machine(':memory:', 'other').snapshot();
    expect(() => machine(':memory:', 'accounts').restore(snapshotOfOther, 1)).toThrow(/snapshot of group other/);
  });

  it('property: any split of the same actions into batches gives the same results and the same database', () => {
    const statement = fc.oneof(
      fc.tuple(fc.integer({ min: 1, max: 8 }), fc.string({ maxLength: 6 })).map(([id, text]) => `INSERT INTO t VALUES (${id}, '${text.replaceAll("'", "''")}')`),
      fc.integer({ min: 1, max: 8 }).map((id) => `DELETE FROM t WHERE id = ${id}`),
      fc.integer({ min: 1, max: 8 }).map((id) => `UPDATE t SET v = v || 'x' WHERE id = ${id}`),
      fc.constant('INSERT INTO t VALUES (NULL, 1) RETURNING id'),
      fc.constant('CREATE INDEX IF NOT EXISTS tv ON t (v)'),
      fc.constant('SELECT nonsense FROM t'),
    );
    fc.assert(
      fc.property(fc.array(statement, { maxLength: 30 }), fc.array(fc.integer({ min: 1, max: 6 }), { maxLength: 30 }), (lines, cuts) => {
        const whole = new SqlMachine({ path: ':memory:', group: 'g' });
        const split = new SqlMachine({ path: ':memory:', group: 'g' });
        try {
          const all = ['CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)', ...lines];
          const wholeErrors = apply(whole, all);
          const splitErrors: (string | null)[] = [];
          let start = 0;
          for (let cut = 0; start < all.length; cut++) {
            const size = cuts[cut % Math.max(1, cuts.length)] ?? 1;
            splitErrors.push(...apply(split, all.slice(start, start + size)));
            start += size;
          }
          expect(splitErrors).toEqual(wholeErrors);
          expect(databaseDigest(split.db)).toBe(databaseDigest(whole.db));
          expect(split.appliedPosition()).toBe(whole.appliedPosition());
        } finally {
          whole.close();
          split.close();
        }
      }),
      { numRuns: 60 },
    );
  });
});

describe('nondeterminismIn', () => {
  it.each([
    ['INSERT INTO t VALUES (random())', /random\(\)/],
    ['INSERT INTO t VALUES (RANDOMBLOB(4))', /randomblob\(\)/],
    ["INSERT INTO t VALUES (datetime('now'))", /'now'/],
    ["INSERT INTO t VALUES (date('2020-01-01', 'localtime'))", /'localtime'/],
    ['INSERT INTO t VALUES (CURRENT_TIMESTAMP)', /CURRENT_TIMESTAMP/],
    ['INSERT INTO t VALUES (unixepoch())', /unixepoch\(\)/],
    ['UPDATE t SET n = changes()', /changes\(\)/],
    ['INSERT INTO t VALUES (last_insert_rowid())', /last_insert_rowid\(\)/],
  ])('refuses %s', (sql, reason) => {
    expect(nondeterminismIn(sql)).toMatch(reason);
  });

  it.each([
    "INSERT INTO t VALUES ('now')",
    "INSERT INTO t VALUES ('random()')",
    "INSERT INTO t VALUES (datetime('2024-01-01', '+1 day'))",
    'INSERT INTO "random" VALUES (1) -- random()',
  ])('accepts %s', (sql) => {
    expect(nondeterminismIn(sql)).toBeNull();
  });
});

describe('StatementReader', () => {
  it('classifies lines: writes, local reads, commands, blocks', () => {
    const reader = new StatementReader();
    expect(reader.line('INSERT INTO t VALUES (1)')).toEqual({ kind: 'write', statements: ['INSERT INTO t VALUES (1)'] });
    expect(reader.line('  select * from t; ')).toEqual({ kind: 'query', sql: 'select * from t;', maybeWrite: false });
    expect(reader.line('WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x')).toMatchObject({ kind: 'query', maybeWrite: true });
    expect(reader.line('')).toBeNull();
    expect(reader.line('-- a comment')).toBeNull();
    expect(reader.line('.status')).toEqual({ kind: 'status' });
    expect(reader.line('.digest')).toEqual({ kind: 'digest' });
    expect(reader.line('.bogus')).toMatchObject({ kind: 'error', reason: expect.stringMatching(/unknown command \.bogus/) as string });
    expect(reader.line('COMMIT')).toMatchObject({ kind: 'error', reason: expect.stringMatching(/no transaction is open/) as string });
    expect(reader.line('BEGIN TRANSACTION;')).toBeNull();
    expect(reader.inBlock).toBe(true);
    expect(reader.line('UPDATE a SET n = n - 1')).toBeNull();
    expect(reader.line('UPDATE b SET n = n + 1')).toBeNull();
    expect(reader.line('COMMIT;')).toEqual({ kind: 'write', statements: ['UPDATE a SET n = n - 1', 'UPDATE b SET n = n + 1'] });
    expect(reader.line('BEGIN')).toBeNull();
    expect(reader.line('DELETE FROM a')).toBeNull();
    expect(reader.line('ROLLBACK')).toEqual({ kind: 'discarded' });
    expect(reader.line('VACUUM')).toMatchObject({ kind: 'error', reason: 'VACUUM is not replicated' });
    expect(reader.line("INSERT INTO t VALUES (datetime('now'))")).toMatchObject({ kind: 'error', reason: expect.stringMatching(/non-deterministic/) as string });
  });

  it('refuses oversized statements and blocks, and a block with a bad line as a whole at COMMIT', () => {
    const reader = new StatementReader();
    const big = `INSERT INTO t VALUES ('${'x'.repeat(SQL_ACTION_BYTES_MAX)}')`;
    expect(reader.line(big)).toMatchObject({ kind: 'error', reason: expect.stringMatching(/statement too long/) as string });
    expect(reader.oversized(10_000_000)).toMatchObject({ kind: 'error', reason: expect.stringMatching(/10000000 bytes/) as string });
    reader.line('BEGIN');
    for (let i = 0; i < 3; i++) expect(reader.line(`INSERT INTO t VALUES ('${'y'.repeat(SQL_ACTION_BYTES_MAX / 2)}')`)).toBeNull();
    expect(reader.line('COMMIT')).toMatchObject({ kind: 'error', reason: expect.stringMatching(/statement too long/) as string });
    reader.line('BEGIN');
    reader.line('INSERT INTO t VALUES (random())');
    reader.line('INSERT INTO t VALUES (1)');
    expect(reader.line('END')).toMatchObject({ kind: 'error', reason: expect.stringMatching(/random/) as string });
    expect(reader.inBlock).toBe(false);
  });
});

describe('BoundedLineSplitter', () => {
  it('joins lines split across chunks, drops CR, reports over-long lines by length, keeps a last unfinished line', () => {
    const seen: string[] = [];
    const lines = new BoundedLineSplitter(10, { line: (text) => seen.push(text), oversized: (bytes) => seen.push(`<${bytes} bytes>`) });
    for (const chunk of ['SEL', 'ECT 1\r\nab', 'c\n', 'x'.repeat(7), 'y'.repeat(7), 'z\nshort\n', '\n', 'tail']) lines.push(Buffer.from(chunk));
    lines.end();
    expect(seen).toEqual(['SELECT 1', 'abc', '<15 bytes>', 'short', '', 'tail']);
  });

  it('property: any chunking gives the same lines', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ maxLength: 14 }).filter((text) => !text.includes('\n') && !text.includes('\r')), { maxLength: 12 }), fc.array(fc.nat({ max: 20 }), { maxLength: 20 }), (texts, cuts) => {
        const input = Buffer.from(texts.map((text) => `${text}\n`).join(''));
        const collect = (chunks: Buffer[]) => {
          const seen: string[] = [];
          const lines = new BoundedLineSplitter(10, { line: (text) => seen.push(text), oversized: (bytes) => seen.push(`<${bytes}>`) });
          for (const chunk of chunks) lines.push(chunk);
          lines.end();
          return seen;
        };
        const chunks: Buffer[] = [];
        let start = 0;
        for (const cut of cuts) {
          chunks.push(input.subarray(start, Math.min(input.length, start + cut)));
          start = Math.min(input.length, start + cut);
        }
        chunks.push(input.subarray(start));
        expect(collect(chunks)).toEqual(collect([input]));
        expect(collect([input])).toEqual(texts.map((text) => (Buffer.byteLength(text) > 10 ? `<${Buffer.byteLength(text)}>` : text)));
      }),
    );
  });
});
