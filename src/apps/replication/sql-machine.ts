/**
 * SqlMachine: a SQLite database as the engine's deterministic state machine.
 *
 * - One SQLite transaction per batch of green actions (group commit); the batch also writes
 *   the applied position into the meta table, so position and data survive a crash together.
 * - Each action runs inside a savepoint: a failing action is rolled back alone and its SQL
 *   error becomes its result, the same at every replica.
 * - Non-deterministic functions are overridden to throw (sql-determinism.ts).
 * - The meta table names the group and a digest of the schema: a database of another group,
 *   a stranger's database, or one whose schema was changed outside replication is refused
 *   when the replica opens it, before it joins and can hand anything to the others.
 */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { StateMachine } from './engine.js';
import { guardFunctions } from './sql-determinism.js';
import { META_TABLE, refusalOf } from './sql-statements.js';

/** The database cannot be used by this group's replica. */
export class StrangerDatabaseError extends Error {
  override name = 'StrangerDatabaseError';
}

/** An action: the statements of one line or one BEGIN … COMMIT block. */
export function encodeSqlAction(statements: string[]): Buffer {
  return Buffer.from(JSON.stringify(statements), 'utf8');
}

function decodeSqlAction(action: Buffer): string[] | null {
  try {
    const value: unknown = JSON.parse(action.toString('utf8'));
    return Array.isArray(value) && value.every((item) => typeof item === 'string') ? value : null;
  } catch {
    return null;
  }
}

/** A result: empty for success, else the error's text. */
export function decodeSqlResult(result: Buffer): { error: string | null } {
  return { error: result.length === 0 ? null : result.toString('utf8') };
}

/** SQLite result codes that say something about this machine, not about the statement: never a deterministic result. */
const LOCAL_FAILURE_CODES = /^SQLITE_(IOERR|FULL|NOMEM|CORRUPT|NOTADB|CANTOPEN|BUSY|LOCKED|READONLY|PROTOCOL)/;

export interface SqlMachineOptions {
  /** Database file, or ':memory:' (tests). */
  path: string;
  /** Replication group: recorded in the database, checked on every open. */
  group: string;
  /**
   * PRAGMA synchronous for the batch transactions. Default NORMAL: in WAL mode a commit is not
   * fsync'ed, but data and applied position stay consistent, and what a power loss takes back
   * the engine replays from its own fsync'ed log (or restores from its checkpoint).
   */
  synchronous?: 'FULL' | 'NORMAL';
}

export class SqlMachine implements StateMachine {
  readonly #options: SqlMachineOptions;
  #db: Database.Database;
  #closeGuard: () => void = () => {};
  readonly #statements = new Map<string, Database.Statement>();

  /** Opens (creating if needed) the database; throws StrangerDatabaseError when it is not this group's. */
  constructor(options: SqlMachineOptions) {
    this.#options = options;
    this.#db = this.#open(new Database(options.path));
  }

  /** The connection, for local reads (queries, digests). Writes must go through the engine. */
  get db(): Database.Database {
    return this.#db;
  }

  applyBatch(actions: { position: number; action: Buffer }[]): Buffer[] {
    if (actions.length === 0) return [];
    const db = this.#db;
    const schemaBefore = db.pragma('schema_version', { simple: true }) as number;
    const results: Buffer[] = [];
    // A database ahead of the engine (its data directory was lost or replaced) already holds
    // these actions: applying them again would apply them twice.
    const applied = this.appliedPosition();
    db.transaction(() => {
      for (const { position, action } of actions) results.push(position <= applied ? Buffer.from('already applied') : this.#applyOne(action));
      this.#setMeta('position', Math.max(applied, actions.at(-1)!.position));
      if ((db.pragma('schema_version', { simple: true }) as number) !== schemaBefore) this.#setMeta('schema', this.#schemaDigest());
    }).immediate();
    return results;
  }

  /** Recorded too, so appliedPosition() is exact after a change of primary. */
  membersChanged(_members: string[], position: number): void {
    this.#db.transaction(() => this.#setMeta('position', position)).immediate();
  }

  appliedPosition(): number {
    return Number(this.#getMeta('position') ?? 0);
  }

  snapshot(): Buffer {
    return this.#db.serialize();
  }

  restore(snapshot: Buffer, position: number): void {
    const incoming = openInMemory(snapshot);
    try {
      const group = incoming.prepare(`SELECT value FROM ${META_TABLE} WHERE key = 'group'`).pluck().get() as string | undefined;
      if (group !== this.#options.group) throw new StrangerDatabaseError(`snapshot of group ${String(group)} offered to a replica of ${this.#options.group}`);
    } finally {
      incoming.close();
    }
    this.#closeDb();
    if (this.#options.path === ':memory:') this.#db = this.#open(openInMemory(snapshot));
    else {
      replaceFile(this.#options.path, snapshot);
      this.#db = this.#open(new Database(this.#options.path));
    }
    this.#db.transaction(() => this.#setMeta('position', position)).immediate();
  }

  close(): void {
    this.#closeDb();
  }

  #closeDb(): void {
    this.#statements.clear();
    this.#closeGuard();
    if (this.#db.open) this.#db.close();
  }

  #open(db: Database.Database): Database.Database {
    try {
      if (this.#options.path !== ':memory:') {
        db.pragma('journal_mode = WAL');
        db.pragma(`synchronous = ${this.#options.synchronous ?? 'NORMAL'}`);
      }
      this.#checkIdentity(db);
      this.#closeGuard = guardFunctions(db);
      return db;
    } catch (error) {
      db.close();
      throw error;
    }
  }

  /** Claims a new database for the group; refuses one that belongs elsewhere or was changed behind the group's back. */
  #checkIdentity(db: Database.Database): void {
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'").pluck().all() as string[];
    if (!tables.includes(META_TABLE)) {
      if (tables.length > 0) {
        throw new StrangerDatabaseError(
          `${this.#options.path} is not a replica's database (it has tables ${tables.slice(0, 5).join(', ')} but no ${META_TABLE}); start a replica with a new file and let the group fill it`,
        );
      }
      db.exec(`CREATE TABLE ${META_TABLE} (key TEXT PRIMARY KEY, value) WITHOUT ROWID`);
      const insert = db.prepare(`INSERT INTO ${META_TABLE} (key, value) VALUES (?, ?)`);
      insert.run('group', this.#options.group);
      insert.run('position', 0);
      insert.run('schema', schemaDigestOf(db));
      return;
    }
    const meta = new Map((db.prepare(`SELECT key, value FROM ${META_TABLE}`).all() as { key: string; value: unknown }[]).map((row) => [row.key, row.value]));
    if (meta.get('group') !== this.#options.group) {
      throw new StrangerDatabaseError(`${this.#options.path} belongs to replication group ${String(meta.get('group'))}, not ${this.#options.group}`);
    }
    if (meta.get('schema') !== schemaDigestOf(db)) {
      throw new StrangerDatabaseError(`${this.#options.path}: its schema was changed outside replication (it differs from the one the group recorded)`);
    }
  }

  #applyOne(action: Buffer): Buffer {
    const statements = decodeSqlAction(action);
    if (statements === null) return Buffer.from('malformed action (not a list of SQL statements)');
    for (const sql of statements) {
      const refused = refusalOf(sql);
      if (refused !== null) return Buffer.from(refused);
    }
    this.#prepare('SAVEPOINT action').run();
    try {
      for (const sql of statements) {
        const statement = this.#prepare(sql);
        if (statement.reader) for (const _row of statement.iterate()) continue;
        else statement.run();
      }
      this.#prepare('RELEASE action').run();
      return Buffer.alloc(0);
    } catch (error) {
      this.#prepare('ROLLBACK TO action').run();
      this.#prepare('RELEASE action').run();
      const code = (error as { code?: unknown }).code;
      if (typeof code === 'string' && LOCAL_FAILURE_CODES.test(code)) throw error;
      return Buffer.from(error instanceof Error ? error.message : String(error));
    }
  }

  /** Compiles `sql` against the local database (throws SQLite's error); the submitter's own apply reuses the result. */
  check(sql: string): void {
    this.#prepare(sql);
  }

  /** Prepared statements are cached: a writer repeating one INSERT shape is parsed once, and so are the per-action savepoints and the meta reads and writes of every batch. */
  #prepare(sql: string): Database.Statement {
    let statement = this.#statements.get(sql);
    if (statement === undefined) {
      statement = this.#db.prepare(sql);
      if (this.#statements.size >= 256) this.#statements.delete(this.#statements.keys().next().value!);
      this.#statements.set(sql, statement);
    }
    return statement;
  }

  #getMeta(key: string): unknown {
    return this.#prepare(`SELECT value FROM ${META_TABLE} WHERE key = ?`).pluck().get(key);
  }

  #setMeta(key: string, value: string | number): void {
    this.#prepare(`INSERT OR REPLACE INTO ${META_TABLE} (key, value) VALUES (?, ?)`).run(key, value);
  }

  #schemaDigest(): string {
    return schemaDigestOf(this.#db);
  }
}

/** Digest of the schema (every object's type, name and SQL, by name). */
function schemaDigestOf(db: Database.Database): string {
  const rows = db.prepare("SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name").all();
  return createHash('sha256').update(JSON.stringify(rows)).digest('hex');
}

/** A snapshot as an in-memory database (a WAL file's header marks it WAL, which memory cannot be: legacy mode is the same content). */
function openInMemory(snapshot: Buffer): Database.Database {
  const bytes = Buffer.from(snapshot);
  if (bytes.length > 19 && bytes[18] === 2 && bytes[19] === 2) bytes[18] = bytes[19] = 1;
  return new Database(bytes);
}

/** Writes `bytes` to a temporary file, syncs it and renames it over `path` (no torn database on a crash). */
function replaceFile(path: string, bytes: Buffer): void {
  const temporary = `${path}.restoring`;
  const fd = openSync(temporary, 'w');
  try {
    writeSync(fd, bytes);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  for (const suffix of ['-wal', '-shm']) if (existsSync(path + suffix)) rmSync(path + suffix);
  renameSync(temporary, path);
  const directory = openSync(dirname(path), 'r');
  try {
    fsyncSync(directory);
  } finally {
    closeSync(directory);
  }
}
