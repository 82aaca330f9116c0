/**
 * SqlReplica: one replica of a replicated SQLite database, driven by lines of SQL (what
 * `tspread sql` reads from stdin). Output lines come out in input order, one answer per
 * request:
 *   write             -> `ok N` once green and applied here (N = global action number) | `error <reason>`
 *   query (SELECT …)  -> its rows, tab-separated, then `ok` | `error <reason>`; read locally
 *   .status           -> `primary|non-primary green N red M`, at once (ahead of answers still waiting)
 *   .digest           -> `digest <sha256 of the content> at N`
 * Writes are submitted at once (pipelined); a query waits for the answers before it, so a
 * client reads its own writes. A write in flight when the replica leaves the primary is
 * answered `error in doubt: …` at once: it may still be ordered once the partition heals.
 */
import type Database from 'better-sqlite3';
import { ActionInDoubtError, NotPrimaryError, ReplicationEngine, type EngineOptions } from './engine.js';
import { databaseDigest } from './sql-digest.js';
import { decodeSqlResult, encodeSqlAction, SqlMachine } from './sql-machine.js';
import { refusalOf, StatementReader, type SqlRequest } from './sql-statements.js';

export interface SqlReplicaOptions extends Omit<EngineOptions, 'machine'> {
  /** The database file. */
  db: string;
  /** Called with each output line (without '\n'), in input order. */
  output: (line: string) => void;
}

/** Errors SQLite gives for text that is not one valid statement, whatever the database holds. */
const SYNTAX_ERRORS = /syntax error|incomplete input|unrecognized token|more than one statement|contains no statements/;

export class SqlReplica {
  readonly machine: SqlMachine;
  readonly engine: ReplicationEngine;
  readonly #reader = new StatementReader();
  readonly #output: (line: string) => void;
  /** Answers written so far wait on this chain, which keeps them in input order. */
  #tail: Promise<void> = Promise.resolve();
  #pending = 0;

  /** Opens the database; throws StrangerDatabaseError when it is not this group's. */
  constructor(options: SqlReplicaOptions) {
    this.machine = new SqlMachine({ path: options.db, group: options.group });
    this.engine = new ReplicationEngine({ ...options, machine: this.machine });
    this.#output = options.output;
  }

  start(): Promise<void> {
    return this.engine.start();
  }

  /** Requests read but not answered yet (the CLI stops reading stdin when there are too many). */
  get pending(): number {
    return this.#pending;
  }

  /** One input line. */
  line(text: string): void {
    const request = this.#reader.line(text);
    if (request !== null) this.#handle(request);
  }

  /** A line too long to keep was skipped (its length in bytes). */
  oversizedLine(bytes: number): void {
    const request = this.#reader.oversized(bytes);
    if (request !== null) this.#handle(request);
  }

  /** Resolves once every request read so far is answered. */
  drained(): Promise<void> {
    return this.#tail;
  }

  async close(): Promise<void> {
    await this.engine.close();
    this.machine.close();
  }

  #handle(request: SqlRequest): void {
    if (request.kind === 'status') {
      // Answered at once, even while earlier writes wait to be ordered (e.g. in a partition).
      this.#output(this.#answerLocally(request)[0]!);
      return;
    }
    const resolved = this.#resolveQuery(request);
    const answer = resolved.kind === 'write' ? this.#submit(resolved.statements) : null;
    this.#pending++;
    this.#tail = this.#tail.then(async () => {
      const lines = answer === null ? this.#answerLocally(resolved) : [await answer];
      for (const line of lines) this.#output(line);
      this.#pending--;
    });
  }

  /** WITH … and PRAGMA … are queries only if SQLite says they only read. */
  #resolveQuery(request: SqlRequest): SqlRequest {
    if (request.kind !== 'query' || !request.maybeWrite) return request;
    let statement: Database.Statement;
    try {
      statement = this.machine.db.prepare(request.sql);
    } catch (error) {
      const message = (error as Error).message;
      if (SYNTAX_ERRORS.test(message)) return { kind: 'error', reason: message };
      return this.#asWrite(request.sql); // e.g. names a table an earlier write creates
    }
    return statement.readonly ? request : this.#asWrite(request.sql);
  }

  #asWrite(sql: string): SqlRequest {
    const refused = refusalOf(sql);
    return refused === null ? { kind: 'write', statements: [sql] } : { kind: 'error', reason: refused };
  }

  async #submit(statements: string[]): Promise<string> {
    for (const sql of statements) {
      try {
        this.machine.check(sql);
      } catch (error) {
        const message = (error as Error).message;
        if (SYNTAX_ERRORS.test(message)) return `error ${message}`;
      }
    }
    try {
      const { position, result } = await this.engine.submit(encodeSqlAction(statements));
      const { error } = decodeSqlResult(result);
      return error === null ? `ok ${position}` : `error ${oneLine(error)}`;
    } catch (error) {
      if (error instanceof ActionInDoubtError) return `error in doubt: this replica left the primary component before the write was ordered; it may still be ordered later`;
      if (error instanceof NotPrimaryError) return `error not in a primary component (${error.message})`;
      return `error ${oneLine((error as Error).message)}`;
    }
  }

  #answerLocally(request: SqlRequest): string[] {
    switch (request.kind) {
      case 'error':
        return [`error ${oneLine(request.reason)}`];
      case 'discarded':
        return ['ok'];
      case 'status': {
        const status = this.engine.status();
        return [`${status.primary ? 'primary' : 'non-primary'} green ${status.lastGreen} red ${status.red}`];
      }
      case 'digest':
        return [`digest ${databaseDigest(this.machine.db)} at ${this.machine.appliedPosition()}`];
      case 'query':
        return this.#query(request.sql);
      case 'write':
        throw new Error('writes are answered by the engine');
    }
  }

  #query(sql: string): string[] {
    try {
      const statement = this.machine.db.prepare(sql);
      if (!statement.readonly) return ['error only statements that read are run locally'];
      const lines: string[] = [];
      if (statement.reader) for (const row of statement.raw().iterate() as Iterable<unknown[]>) lines.push(row.map(formatValue).join('\t'));
      else statement.run();
      lines.push('ok');
      return lines;
    } catch (error) {
      return [`error ${oneLine((error as Error).message)}`];
    }
  }
}

/** A value as text on one line: NULL empty, blobs as X'hex', tabs, newlines and backslashes escaped. */
function formatValue(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (Buffer.isBuffer(value)) return `X'${value.toString('hex')}'`;
  return String(value).replaceAll('\\', '\\\\').replaceAll('\t', '\\t').replaceAll('\n', '\\n').replaceAll('\r', '\\r');
}

function oneLine(text: string): string {
  return text.replaceAll(/\s*\n\s*/g, ' ');
}
