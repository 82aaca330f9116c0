/**
 * The statement reader's grammar, without I/O: one statement per line, `BEGIN … COMMIT`
 * gathers the lines between into one action, `.status` / `.digest` are commands. Lines are
 * classified by their first keyword only, because a write may name a table that an earlier,
 * not yet applied, write creates: only SQLite at apply time can judge it.
 */
import { nondeterminismIn, scanSql } from './sql-determinism.js';

/** Largest action (all statements of one line or block, in bytes): fits a Spread message with room for the engine's framing. */
export const SQL_ACTION_BYTES_MAX = 64 * 1024;

export type SqlRequest =
  | { kind: 'write'; statements: string[] }
  /** A read executed locally; `maybeWrite` = decide after preparing it (WITH, PRAGMA). */
  | { kind: 'query'; sql: string; maybeWrite: boolean }
  | { kind: 'status' }
  | { kind: 'digest' }
  /** ROLLBACK of an open block: nothing was submitted. */
  | { kind: 'discarded' }
  | { kind: 'error'; reason: string };

const READ_KEYWORDS = new Set(['select', 'values', 'explain']);
const MAYBE_READ_KEYWORDS = new Set(['with', 'pragma']);
/** Statements that would break the replica's own transaction or reach outside the database. */
const REFUSED_KEYWORDS = new Set(['savepoint', 'release', 'attach', 'detach', 'vacuum']);
/** The replica's own bookkeeping table: no statement may touch it. */
export const META_TABLE = 'tspread_replication';

/** The statement's first keyword, lower case ('' for an empty or comment-only line). */
export function firstKeyword(sql: string): string {
  return /^\s*([A-Za-z]+)/.exec(scanSql(sql).code)?.[1]?.toLowerCase() ?? '';
}

/**
 * Why a statement may not be part of a replicated action, or null. Run by the reader before
 * submitting and again by the machine before executing (the same answer at every replica).
 */
export function refusalOf(sql: string): string | null {
  const keyword = firstKeyword(sql);
  if (keyword === 'begin' || keyword === 'commit' || keyword === 'end' || keyword === 'rollback') {
    return `${keyword.toUpperCase()} is only allowed as a line of its own around a block`;
  }
  if (REFUSED_KEYWORDS.has(keyword)) return `${keyword.toUpperCase()} is not replicated`;
  if (keyword === 'pragma') return 'a PRAGMA that changes settings is not replicated';
  if (scanSql(sql).code.toLowerCase().includes(META_TABLE)) return `${META_TABLE} is the replica's own table`;
  return nondeterminismIn(sql);
}

const BEGIN_LINE = /^\s*begin(\s+(deferred|immediate|exclusive))?(\s+transaction)?\s*;?\s*$/i;
const COMMIT_LINE = /^\s*(commit|end)(\s+transaction)?\s*;?\s*$/i;
const ROLLBACK_LINE = /^\s*rollback(\s+transaction)?\s*;?\s*$/i;

/** Turns input lines into requests; keeps the open block between lines. */
export class StatementReader {
  #block: string[] | null = null;
  #blockBytes = 0;
  #blockRefusal: string | null = null;

  get inBlock(): boolean {
    return this.#block !== null;
  }

  /** The request a line completes, or null (an empty line, or a line inside a block). */
  line(text: string): SqlRequest | null {
    const trimmed = text.trim();
    if (scanSql(trimmed).code.trim() === '') return null;
    if (this.#block !== null) return this.#inBlock(trimmed);
    if (trimmed.startsWith('.')) return this.#command(trimmed);
    if (BEGIN_LINE.test(trimmed)) {
      this.#block = [];
      this.#blockBytes = 0;
      this.#blockRefusal = null;
      return null;
    }
    if (COMMIT_LINE.test(trimmed) || ROLLBACK_LINE.test(trimmed)) return { kind: 'error', reason: 'no transaction is open (BEGIN first)' };
    const bytes = Buffer.byteLength(trimmed);
    if (bytes > SQL_ACTION_BYTES_MAX) return { kind: 'error', reason: tooLong(bytes) };
    const keyword = firstKeyword(trimmed);
    if (READ_KEYWORDS.has(keyword)) return { kind: 'query', sql: trimmed, maybeWrite: false };
    if (MAYBE_READ_KEYWORDS.has(keyword)) return { kind: 'query', sql: trimmed, maybeWrite: true };
    const refused = refusalOf(trimmed);
    return refused === null ? { kind: 'write', statements: [trimmed] } : { kind: 'error', reason: refused };
  }

  /** A line too long to read whole was dropped: it ends an open block with an error. */
  oversized(bytes: number): SqlRequest | null {
    if (this.#block === null) return { kind: 'error', reason: tooLong(bytes) };
    this.#blockRefusal ??= tooLong(bytes);
    return null;
  }

  #inBlock(trimmed: string): SqlRequest | null {
    const block = this.#block!;
    if (ROLLBACK_LINE.test(trimmed)) {
      this.#block = null;
      return { kind: 'discarded' };
    }
    if (COMMIT_LINE.test(trimmed)) {
      this.#block = null;
      return this.#blockRefusal === null ? { kind: 'write', statements: block } : { kind: 'error', reason: this.#blockRefusal };
    }
    if (BEGIN_LINE.test(trimmed)) this.#blockRefusal ??= 'BEGIN inside an open block (blocks do not nest)';
    else if (trimmed.startsWith('.')) this.#blockRefusal ??= `${trimmed.split(/\s/)[0]} inside a block`;
    else {
      this.#blockBytes += Buffer.byteLength(trimmed) + 8;
      if (this.#blockBytes > SQL_ACTION_BYTES_MAX) this.#blockRefusal ??= tooLong(this.#blockBytes);
      else this.#blockRefusal ??= refusalOf(trimmed);
      block.push(trimmed);
    }
    return null;
  }

  #command(trimmed: string): SqlRequest {
    const command = trimmed.split(/\s+/)[0]!.toLowerCase();
    if (command === '.status') return { kind: 'status' };
    if (command === '.digest') return { kind: 'digest' };
    return { kind: 'error', reason: `unknown command ${command} (known: .status, .digest)` };
  }
}

function tooLong(bytes: number): string {
  return `statement too long: ${bytes} bytes (at most ${SQL_ACTION_BYTES_MAX} per line or block)`;
}
