/**
 * Keeps replicated SQL deterministic: every replica must compute the same result from the
 * same statement. Two layers:
 *  - `nondeterminismIn(sql)`: a lexical check the reader runs BEFORE submitting, so a user
 *    gets a clear error and nothing is ordered;
 *  - `guardFunctions(db)`: overrides SQLite's non-deterministic functions on the replica's
 *    connection with ones that throw. It catches what the lexical check cannot see (a
 *    column holding 'now' passed to datetime()), and it throws the same error at every
 *    replica, so the refusal itself is a deterministic result.
 */
import Database from 'better-sqlite3';

/** Functions whose value differs between replicas (or between a replica and its snapshot). */
const REFUSED_FUNCTIONS: Record<string, number> = {
  random: 0,
  randomblob: 1,
  changes: 0,
  total_changes: 0,
  last_insert_rowid: 0,
  current_timestamp: 0,
  current_date: 0,
  current_time: 0,
};

/** Date and time functions: deterministic unless asked for the clock or the host's time zone. */
const TIME_FUNCTIONS = ['date', 'time', 'datetime', 'julianday', 'unixepoch', 'strftime', 'timediff'];
/** Arguments that make a time function read the clock or the local time zone. */
const CLOCK_WORDS = new Set(['now', 'localtime', 'utc']);

export class NondeterministicSqlError extends Error {
  override name = 'NondeterministicSqlError';
}

function refusal(what: string): string {
  return `non-deterministic SQL refused: ${what} would differ between replicas; compute the value in the client and write it as a literal`;
}

/** Splits SQL into its code (literals and comments blanked) and its string literals' contents. */
export function scanSql(sql: string): { code: string; literals: string[] } {
  let code = '';
  const literals: string[] = [];
  let index = 0;
  while (index < sql.length) {
    const char = sql[index]!;
    if (char === "'") {
      let text = '';
      index++;
      while (index < sql.length) {
        if (sql[index] === "'" && sql[index + 1] === "'") {
          text += "'";
          index += 2;
        } else if (sql[index] === "'") break;
        else text += sql[index++];
      }
      index++;
      literals.push(text);
      code += " '' ";
    } else if (char === '"' || char === '`' || char === '[') {
      const close = char === '[' ? ']' : char;
      const end = sql.indexOf(close, index + 1);
      index = end < 0 ? sql.length : end + 1;
      code += ' _quoted_ ';
    } else if (char === '-' && sql[index + 1] === '-') {
      const end = sql.indexOf('\n', index);
      index = end < 0 ? sql.length : end + 1;
      code += ' ';
    } else if (char === '/' && sql[index + 1] === '*') {
      const end = sql.indexOf('*/', index + 2);
      index = end < 0 ? sql.length : end + 2;
      code += ' ';
    } else {
      code += char;
      index++;
    }
  }
  return { code, literals };
}

const REFUSED_PATTERNS = Object.keys(REFUSED_FUNCTIONS).map((name) =>
  name.startsWith('current_')
    ? { pattern: new RegExp(`\\b${name}\\b`), label: name.toUpperCase() }
    : { pattern: new RegExp(`\\b${name}\\s*\\(`), label: `${name}()` },
);
const TIME_CALL_WITHOUT_ARGUMENTS = new RegExp(`\\b(${TIME_FUNCTIONS.join('|')})\\s*\\(\\s*\\)`);
const TIME_CALL = new RegExp(`\\b(${TIME_FUNCTIONS.join('|')})\\s*\\(`);

/** Why `sql` would not be deterministic, or null when the lexical check finds nothing. */
export function nondeterminismIn(sql: string): string | null {
  const { code, literals } = scanSql(sql);
  const lower = code.toLowerCase();
  for (const { pattern, label } of REFUSED_PATTERNS) if (pattern.test(lower)) return refusal(label);
  const timeCall = TIME_CALL_WITHOUT_ARGUMENTS.exec(lower);
  if (timeCall !== null) return refusal(`${timeCall[1]}() (the current time)`);
  const usesTime = TIME_CALL.test(lower);
  const clockWord = literals.find((text) => CLOCK_WORDS.has(text.trim().toLowerCase()));
  if (usesTime && clockWord !== undefined) return refusal(`'${clockWord}' in a date/time function`);
  return null;
}

/** Does a time function call with these arguments read the clock or the host's time zone? */
function readsClock(name: string, args: unknown[]): boolean {
  if (args.length === 0) return true;
  if (name === 'strftime' && args.length === 1) return true;
  return args.some((arg) => typeof arg === 'string' && CLOCK_WORDS.has(arg.trim().toLowerCase()));
}

/**
 * Replaces the non-deterministic functions of `db` with ones that throw. The date and time
 * functions keep working for fixed times: they are evaluated by SQLite's own built-ins on a
 * private in-memory connection, which the returned function closes.
 */
export function guardFunctions(db: Database.Database): () => void {
  for (const [name, arity] of Object.entries(REFUSED_FUNCTIONS)) {
    const label = name.startsWith('current_') ? name.toUpperCase() : `${name}()`;
    const thrower = () => {
      throw new NondeterministicSqlError(refusal(label));
    };
    db.function(name, { deterministic: true }, arity === 0 ? () => thrower() : (_value: unknown) => thrower());
  }
  const builtins = new Database(':memory:');
  const byArity = new Map<string, Database.Statement>();
  for (const name of TIME_FUNCTIONS) {
    db.function(name, { deterministic: true, varargs: true }, (...args: unknown[]) => {
      if (readsClock(name, args)) throw new NondeterministicSqlError(refusal(`${name}() of the current time or the local time zone`));
      const key = `${name}/${args.length}`;
      let statement = byArity.get(key);
      if (statement === undefined) {
        statement = builtins.prepare(`SELECT ${name}(${args.map(() => '?').join(', ')})`).pluck();
        byArity.set(key, statement);
      }
      return statement.get(...args) as string | number | null;
    });
  }
  return () => builtins.close();
}
