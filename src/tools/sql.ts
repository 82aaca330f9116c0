/**
 * `tspread sql --db FILE --group NAME [-s daemon] [--name REPLICA]`: one replica of a
 * replicated SQLite database. Reads SQL from stdin, one statement per line (a BEGIN … COMMIT
 * block is one action), and answers on stdout, one answer per request in input order (see
 * src/apps/replication/sql-replica.ts). Logs (pino JSON) go to stderr.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { pino } from 'pino';
import { connect } from '../client/index.js';
import { BoundedLineSplitter, SQL_ACTION_BYTES_MAX, SqlReplica } from '../apps/replication/index.js';

interface SqlOptions {
  db: string;
  group: string;
  spread: string;
  socketDir?: string;
  name?: string;
  dataDir?: string;
  replicas?: string[];
  queueRed?: boolean;
  logLevel: string;
}

/** Requests read ahead of their answers before stdin is paused. */
const PENDING_MAX = 20_000;

/**
 * Answers made in one event-loop turn (a delivered batch acknowledges many writes at once) go
 * to stdout as one write: on Linux a write to a pipe is a synchronous syscall that wakes the
 * reader, so one per line costs both processes a wake-up per write.
 */
function batchedOutput(write: (text: string) => void): { line: (text: string) => void; flush: () => void } {
  let lines: string[] = [];
  const flush = () => {
    if (lines.length === 0) return;
    const text = `${lines.join('\n')}\n`;
    lines = [];
    write(text);
  };
  return {
    line: (text) => {
      if (lines.length === 0) setImmediate(flush);
      lines.push(text);
    },
    flush,
  };
}

function parseNames(text: string): string[] {
  const names = text.split(',').map((name) => name.trim()).filter((name) => name !== '');
  if (names.length === 0) throw new InvalidArgumentError('expected replica names separated by commas');
  return names;
}

/** The replica's name: given, or the one chosen on its first start (kept in the data directory). */
function replicaName(dataDir: string, given: string | undefined): string {
  const file = join(dataDir, 'replica-name');
  const recorded = existsSync(file) ? readFileSync(file, 'utf8').trim() : undefined;
  if (given !== undefined && recorded !== undefined && given !== recorded) {
    throw new Error(`${dataDir} belongs to replica ${recorded}, not ${given}`);
  }
  const name = given ?? recorded ?? `r${randomBytes(4).toString('hex')}`;
  if (recorded === undefined) writeFileSync(file, `${name}\n`);
  return name;
}

export function sqlCommand(): Command {
  return new Command('sql')
    .description('replicated SQLite: a replica of a database kept identical over a Spread group (Amir–Tutu engine); SQL on stdin, one statement per line')
    .requiredOption('--db <file>', 'SQLite database file of this replica (created if missing)')
    .requiredOption('-g, --group <name>', 'Spread group of the replicas')
    .option('-s, --spread <daemon>', 'Spread name of the local daemon: 4803 (Unix socket) or 4803@host', '4803')
    .option('--socket-dir <dir>', "directory of the daemon's Unix socket (default /tmp)")
    .option('--name <replica>', 'unique name of this replica (default: chosen once and kept in the data directory)')
    .option('--data-dir <dir>', "this replica's action log and checkpoints (default <db>.replication)")
    .option('--replicas <names>', 'comma-separated names of all replicas: the first primary needs a majority of them', parseNames)
    .option('--queue-red', 'outside a primary component, hold writes (red) until a primary orders them instead of refusing them')
    .option('--log-level <level>', 'log level (stderr): trace, debug, info, warn, error, fatal', 'warn')
    .addHelpText(
      'after',
      `
Answers (stdout), one per request, in input order:
  write                    ok N          (green and applied here; N = global action number, equal at every replica)
                           error <reason> (outside a primary component; in doubt: cut off while in flight, may
                                           still be ordered; refused or non-deterministic SQL; SQL error)
  SELECT …                 rows, tab-separated, then ok    (read locally)
  BEGIN / … / COMMIT       one action: one answer at COMMIT
  .status                  primary|non-primary green <last green number> red <red count>   (at once)
  .digest                  digest <sha256 of schema and rows> at <applied position>
A line or block is at most ${SQL_ACTION_BYTES_MAX} bytes.`,
    )
    .action(async (options: SqlOptions) => {
      const logger = pino({ level: options.logLevel, base: { pid: process.pid, tool: 'sql' } }, pino.destination(2));
      const dataDir = options.dataDir ?? `${options.db}.replication`;
      let replica: SqlReplica;
      const answers = batchedOutput((text) => {
        process.stdout.write(text);
        if (replica.pending < PENDING_MAX / 2 && process.stdin.isPaused()) process.stdin.resume();
      });
      try {
        mkdirSync(dataDir, { recursive: true });
        replica = new SqlReplica({
          db: options.db,
          group: options.group,
          name: replicaName(dataDir, options.name),
          dataDir,
          replicas: options.replicas,
          outsidePrimary: options.queueRed === true ? 'queue' : 'refuse',
          logger,
          connect: () => connect({ daemon: options.spread, unixSocketDir: options.socketDir }),
          output: answers.line,
        });
        await replica.start();
      } catch (error) {
        process.stderr.write(`tspread sql: ${(error as Error).message}\n`);
        process.exit(2);
      }
      const stop = async (code: number) => {
        await replica.close();
        answers.flush();
        logger.flush();
        process.exit(code);
      };
      const lines = new BoundedLineSplitter(SQL_ACTION_BYTES_MAX + 1024, {
        line: (text) => replica.line(text),
        oversized: (bytes) => replica.oversizedLine(bytes),
      });
      process.stdin.on('data', (chunk: Buffer) => {
        lines.push(chunk);
        if (replica.pending >= PENDING_MAX) process.stdin.pause();
      });
      process.stdin.on('end', () => {
        lines.end();
        void replica.drained().then(() => stop(0));
      });
      process.once('SIGTERM', () => void stop(0));
      process.once('SIGINT', () => void stop(0));
    });
}
