/**
 * `tspread sql` replica processes for tests and the benchmark: each request written to stdin
 * gets a promise of its answer lines (answers come back in input order).
 *
 *   const replica = SqlReplicaProcess.start({ db, group: 'bank', name: 'r1', socketDir, spread: '4803' });
 *   await replica.untilPrimary(3);
 *   await replica.write('INSERT INTO t VALUES (1)');     // 'ok 7' or 'error …'
 *   await replica.query('SELECT * FROM t');              // ['1', 'ok']
 *   await replica.stop();
 */
import { ToolProcess } from '../fake-daemon/processes.js';

export interface SqlReplicaArgs {
  db: string;
  group: string;
  name: string;
  /** Spread name of the daemon (4803, or 4803@host). */
  spread: string;
  socketDir?: string;
  dataDir?: string;
  replicas?: string[];
  extra?: string[];
}

const STATUS_LINE = /^(primary|non-primary) green (\d+) red (\d+)$/;

interface Request {
  /** 'line': the answer is one line; 'rows': lines up to and including `ok` / `error …`; 'status': answered at once. */
  shape: 'line' | 'rows' | 'status';
  lines: string[];
  resolve: (lines: string[]) => void;
}

export class SqlReplicaProcess {
  readonly tool: ToolProcess;
  readonly args: SqlReplicaArgs;
  readonly #requests: Request[] = [];
  /** `.status` is answered at once, ahead of the answers still waiting. */
  readonly #statusRequests: Request[] = [];
  #consumed = 0;

  private constructor(args: SqlReplicaArgs) {
    this.args = args;
    const argv = ['sql', '--db', args.db, '--group', args.group, '--name', args.name, '-s', args.spread];
    if (args.socketDir !== undefined) argv.push('--socket-dir', args.socketDir);
    if (args.dataDir !== undefined) argv.push('--data-dir', args.dataDir);
    if (args.replicas !== undefined) argv.push('--replicas', args.replicas.join(','));
    this.tool = new ToolProcess([...argv, ...(args.extra ?? [])]);
    this.tool.child.stdout.on('data', () => this.#take());
    // Unanswered requests of a dead process end with what it said last.
    void this.tool.exited.then(() => {
      for (const request of [...this.#statusRequests.splice(0), ...this.#requests.splice(0)]) request.resolve([...request.lines, 'error replica exited']);
    });
    this.tool.child.stdin.on('error', () => {});
  }

  static start(args: SqlReplicaArgs): SqlReplicaProcess {
    return new SqlReplicaProcess(args);
  }

  /** A write, .status, .digest, or anything answered with one line. */
  async request(line: string): Promise<string> {
    return (await this.#send(line, 'line'))[0]!;
  }

  write(sql: string): Promise<string> {
    return this.request(sql);
  }

  /** A BEGIN … COMMIT block: one answer. */
  block(statements: string[]): Promise<string> {
    for (const statement of ['BEGIN', ...statements]) this.tool.send(statement);
    return this.request('COMMIT');
  }

  /** A query: its rows then the closing `ok` / `error …`. */
  query(sql: string): Promise<string[]> {
    return this.#send(sql, 'rows');
  }

  async status(): Promise<{ primary: boolean; green: number; red: number }> {
    const line = (await this.#send('.status', 'status'))[0]!;
    const match = STATUS_LINE.exec(line);
    if (match === null) throw new Error(`unexpected .status answer: ${line}`);
    return { primary: match[1] === 'primary', green: Number(match[2]), red: Number(match[3]) };
  }

  async digest(): Promise<{ digest: string; position: number }> {
    const line = await this.request('.digest');
    const match = /^digest ([0-9a-f]{64}) at (\d+)$/.exec(line);
    if (match === null) throw new Error(`unexpected .digest answer: ${line}`);
    return { digest: match[1]!, position: Number(match[2]) };
  }

  /** Polls .status until primary (and, if given, until green ≥ `green`). */
  async untilPrimary(timeoutMs = 30_000, green = 0): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const status = await this.status();
      if (status.primary && status.green >= green) return;
      if (Date.now() > deadline) throw new Error(`${this.args.name} not primary within ${timeoutMs} ms (${JSON.stringify(status)})\n${this.tool.stderr.slice(-2000)}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  get alive(): boolean {
    return this.tool.child.exitCode === null && this.tool.child.signalCode === null;
  }

  kill(): void {
    this.tool.kill();
  }

  /** Closes stdin (the replica answers what it read, then exits); SIGKILL after `timeoutMs`. */
  async stop(timeoutMs = 10_000): Promise<number | null> {
    if (!this.alive) return this.tool.child.exitCode;
    this.tool.child.stdin.end();
    const timer = setTimeout(() => this.kill(), timeoutMs);
    const code = await this.tool.exited;
    clearTimeout(timer);
    return code;
  }

  #send(line: string, shape: Request['shape']): Promise<string[]> {
    return new Promise((resolve) => {
      if (!this.alive) {
        resolve(['error replica exited']);
        return;
      }
      (shape === 'status' ? this.#statusRequests : this.#requests).push({ shape, lines: [], resolve });
      this.tool.send(line);
    });
  }

  #take(): void {
    const text = this.tool.stdout;
    for (let end = text.indexOf('\n', this.#consumed); end >= 0; end = text.indexOf('\n', this.#consumed)) {
      const line = text.slice(this.#consumed, end);
      this.#consumed = end + 1;
      if (this.#statusRequests.length > 0 && STATUS_LINE.test(line)) {
        this.#statusRequests.shift()!.resolve([line]);
        continue;
      }
      const request = this.#requests[0];
      if (request === undefined) continue;
      request.lines.push(line);
      if (request.shape === 'line' || line === 'ok' || line.startsWith('error ')) {
        this.#requests.shift();
        request.resolve(request.lines);
      }
    }
  }
}

/**
 * A client of several replicas that fails over (standby take-over): it writes through one
 * replica and, when that one dies, sends every write not yet acknowledged to the next one.
 * Writes must be idempotent (a client-chosen key with INSERT OR IGNORE, an upsert …): a write
 * the dead replica had submitted may already be ordered, and must not count twice.
 */
export class FailoverWriter {
  readonly #replicas: SqlReplicaProcess[];
  #current = 0;
  failovers = 0;

  constructor(replicas: SqlReplicaProcess[]) {
    this.#replicas = replicas;
  }

  /** Writes until acknowledged (`ok N`), moving on to the next live replica when one dies. */
  async write(sql: string): Promise<string> {
    for (let attempt = 0; attempt < 50; attempt++) {
      const replica = this.#replicas[this.#current]!;
      const answer = replica.alive ? await replica.write(sql) : 'error replica exited';
      const retry = answer === 'error replica exited' || answer.startsWith('error not in a primary component') || answer.startsWith('error in doubt');
      if (!retry) return answer;
      if (!replica.alive) {
        this.#current = (this.#current + 1) % this.#replicas.length;
        this.failovers++;
      } else await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`no replica acknowledged: ${sql}`);
  }
}
