/**
 * `tspread sql` replicas as real processes on one real daemon: ordered writes from every
 * replica with the same numbers everywhere, local reads, bad input (malformed, oversized,
 * non-deterministic SQL, a stranger's database) and a replica killed with kill -9 in the
 * middle of a stream of writes and restarted.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqlMachine } from '../src/apps/replication/index.js';
import { ensureBuilt, ToolProcess } from './fake-daemon/processes.js';
import { freePort, soloConfig, startDaemon, type StartedDaemon } from './helpers/daemon.js';
import { FailoverWriter, SqlReplicaProcess } from './helpers/sql-replicas.js';

let daemon: StartedDaemon;
let scratch: string;
const replicas: SqlReplicaProcess[] = [];

beforeAll(async () => {
  ensureBuilt();
  const port = await freePort();
  daemon = await startDaemon({ port, config: soloConfig(port) });
  scratch = mkdtempSync(join(tmpdir(), 'tspread-sql-'));
}, 60_000);

afterAll(async () => {
  for (const replica of replicas) replica.kill();
  await daemon?.stop();
  rmSync(scratch, { recursive: true, force: true });
});

function start(group: string, name: string, names: string[], db = join(scratch, `${group}-${name}.db`)): SqlReplicaProcess {
  const replica = SqlReplicaProcess.start({ db, group, name, spread: `${daemon.port}@127.0.0.1`, replicas: names });
  replicas.push(replica);
  return replica;
}

async function digestsAgree(group: SqlReplicaProcess[], timeoutMs = 20_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const digests = await Promise.all(group.map((replica) => replica.digest()));
    if (new Set(digests.map((d) => `${d.digest}@${d.position}`)).size === 1) return digests[0]!.digest;
    if (Date.now() > deadline) throw new Error(`digests differ: ${JSON.stringify(digests)}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

describe('tspread sql on one daemon', () => {
  it('orders writes from every replica: one number per write, equal everywhere, every acknowledged row present once', async () => {
    const names = ['a1', 'a2', 'a3'];
    const group = names.map((name) => start('orders', name, names));
    await Promise.all(group.map((replica) => replica.untilPrimary()));
    expect(await group[0]!.write('CREATE TABLE t (writer TEXT, n INTEGER, PRIMARY KEY (writer, n))')).toMatch(/^ok \d+$/);
    await Promise.all(group.map((replica) => replica.untilPrimary(30_000, 1)));
    const answers = await Promise.all(
      group.map((replica, index) => Promise.all(Array.from({ length: 200 }, (_, n) => replica.write(`INSERT INTO t VALUES ('${names[index]}', ${n})`)))),
    );
    const positions = answers.flat().map((answer) => {
      expect(answer).toMatch(/^ok \d+$/);
      return Number(answer.slice(3));
    });
    expect(new Set(positions).size).toBe(600);
    // Each replica's own writes were ordered in the order it sent them.
    for (const list of answers) expect(list.map((answer) => Number(answer.slice(3)))).toEqual([...list.map((answer) => Number(answer.slice(3)))].sort((x, y) => x - y));
    await digestsAgree(group);
    // Read your writes: a query waits for the answers before it.
    const [insert, rows] = await Promise.all([group[1]!.write("INSERT INTO t VALUES ('late', 1)"), group[1]!.query("SELECT writer, n FROM t WHERE writer = 'late'")]);
    expect(insert).toMatch(/^ok \d+$/);
    expect(rows).toEqual(['late\t1', 'ok']);
    expect(await group[2]!.query('SELECT count(*) FROM t')).toEqual([expect.stringMatching(/^\d+$/), 'ok']);
    expect(await group[0]!.block(["INSERT INTO t VALUES ('block', 1)", "INSERT INTO t VALUES ('block', 2)"])).toMatch(/^ok \d+$/);
    await digestsAgree(group);
    await Promise.all(group.map((replica) => replica.stop()));
  }, 120_000);

  it('tspread sql --help lists the flags and the answers', async () => {
    const help = new ToolProcess(['sql', '--help']);
    expect(await help.exited).toBe(0);
    for (const text of ['--db <file>', '--group <name>', '--spread <daemon>', '--name <replica>', 'ok N', '.status', 'primary|non-primary']) expect(help.stdout).toContain(text);
  });

  it('answers bad input with a clear error and loses nothing at the others', async () => {
    const names = ['b1', 'b2'];
    const group = names.map((name) => start('bad', name, names));
    await Promise.all(group.map((replica) => replica.untilPrimary()));
    const [first, second] = group as [SqlReplicaProcess, SqlReplicaProcess];
    expect(await first.write('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)')).toMatch(/^ok \d+$/);
    expect(await first.write('INSERT INTO t VALUES (1, ')).toMatch(/^error incomplete input/);
    expect(await first.write('INSERT INTO t VALUSE (1)')).toMatch(/^error near "VALUSE": syntax error/);
    expect(await first.write(`INSERT INTO t VALUES (2, '${'x'.repeat(200_000)}')`)).toMatch(/^error statement too long: \d+ bytes/);
    expect(await first.write(`INSERT INTO t VALUES (2, '${'x'.repeat(70_000)}')`)).toMatch(/^error statement too long: \d+ bytes/);
    expect(await first.write('INSERT INTO t VALUES (3, random())')).toMatch(/^error non-deterministic SQL refused: random\(\)/);
    expect(await first.write("INSERT INTO t VALUES (4, datetime('now'))")).toMatch(/^error non-deterministic SQL refused/);
    expect(await first.write('INSERT INTO t VALUES (5, CURRENT_TIMESTAMP)')).toMatch(/^error non-deterministic SQL refused: CURRENT_TIMESTAMP/);
    expect(await first.write('INSERT INTO missing VALUES (1)')).toMatch(/^error no such table: missing/);
    expect(await first.write('ATTACH DATABASE \'/tmp/x.db\' AS x')).toBe('error ATTACH is not replicated');
    expect(await first.write('.nonsense')).toMatch(/^error unknown command/);
    expect(await second.write("INSERT INTO t VALUES (1, 'a')")).toMatch(/^ok \d+$/);
    // The same SQL error at every replica: the duplicate fails wherever it is sent.
    expect(await first.write("INSERT INTO t VALUES (1, 'b')")).toBe('error UNIQUE constraint failed: t.id');
    expect(await first.query('SELECT v FROM t')).toEqual(['a', 'ok']);
    await digestsAgree(group);

    // A stranger's database, and a database of another group: refused at start, before joining.
    const strangerPath = join(scratch, 'stranger.db');
    const stranger = new Database(strangerPath);
    stranger.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t VALUES (99, \'evil\')');
    stranger.close();
    const intruder = start('bad', 'b3', names, strangerPath);
    expect(await intruder.tool.exited).toBe(2);
    expect(intruder.tool.stderr).toMatch(/stranger\.db is not a replica's database \(it has tables t but no tspread_replication\)/);
    const otherPath = join(scratch, 'other-group.db');
    new SqlMachine({ path: otherPath, group: 'orders' }).close();
    const otherGroup = start('bad', 'b4', names, otherPath);
    expect(await otherGroup.tool.exited).toBe(2);
    expect(otherGroup.tool.stderr).toMatch(/belongs to replication group orders, not bad/);
    expect(await second.write("INSERT INTO t VALUES (2, 'b')")).toMatch(/^ok \d+$/);
    expect(await second.query('SELECT id, v FROM t ORDER BY id')).toEqual(['1\ta', '2\tb', 'ok']);
    await digestsAgree(group);
    await Promise.all(group.map((replica) => replica.stop()));
  }, 120_000);

  it('a replica killed with kill -9 mid-stream restarts from its database and log and catches up', async () => {
    const names = ['c1', 'c2', 'c3'];
    const group = names.map((name) => start('crash', name, names));
    await Promise.all(group.map((replica) => replica.untilPrimary()));
    expect(await group[0]!.write('CREATE TABLE t (writer TEXT, n INTEGER, PRIMARY KEY (writer, n))')).toMatch(/^ok \d+$/);
    const acknowledged: string[] = [];
    const writer = async (replica: SqlReplicaProcess, name: string, count: number) => {
      for (let n = 0; n < count; n++) {
        const answer = await replica.write(`INSERT INTO t VALUES ('${name}', ${n})`);
        if (answer.startsWith('ok ')) acknowledged.push(`${name}\t${n}`);
      }
    };
    const victim = group[2]!;
    const streams = [writer(group[0]!, 'c1', 300), writer(group[1]!, 'c2', 300), writer(victim, 'c3', 1000)];
    while ((victim.tool.stdout.match(/^ok /gm) ?? []).length < 50) await new Promise((resolve) => setTimeout(resolve, 20));
    victim.kill();
    await Promise.all(streams);
    const restarted = start('crash', 'c3', names, victim.args.db);
    group[2] = restarted;
    await restarted.untilPrimary();
    await writer(restarted, 'c3-again', 20);
    await digestsAgree(group, 30_000);
    const rows = (await group[0]!.query("SELECT writer, n FROM t ORDER BY writer, n")).slice(0, -1);
    expect(new Set(rows).size).toBe(rows.length);
    for (const row of acknowledged) expect(rows).toContain(row);
    await Promise.all(group.map((replica) => replica.stop()));
  }, 180_000);

  it('standby take-over: a client fails over from a replica killed with kill -9 to another and loses no acknowledged write', async () => {
    const names = ['s1', 's2', 's3'];
    const group = names.map((name) => start('standby', name, names));
    await Promise.all(group.map((replica) => replica.untilPrimary()));
    expect(await group[0]!.write('CREATE TABLE orders (id TEXT PRIMARY KEY, amount INTEGER)')).toMatch(/^ok \d+$/);
    const clients = [new FailoverWriter([group[0]!, group[1]!]), new FailoverWriter([group[0]!, group[2]!])];
    const acknowledged: string[] = [];
    const run = (client: FailoverWriter, prefix: string) =>
      (async () => {
        for (let n = 0; n < 300; n++) {
          const answer = await client.write(`INSERT OR IGNORE INTO orders VALUES ('${prefix}-${n}', ${n})`);
          expect(answer).toMatch(/^ok \d+$/);
          acknowledged.push(`${prefix}-${n}`);
        }
      })();
    const runs = [run(clients[0]!, 'x'), run(clients[1]!, 'y')];
    while (acknowledged.length < 100) await new Promise((resolve) => setTimeout(resolve, 20));
    group[0]!.kill();
    await Promise.all(runs);
    expect(clients.map((client) => client.failovers)).toEqual([1, 1]);
    const survivors = [group[1]!, group[2]!];
    await digestsAgree(survivors);
    const ids = (await survivors[0]!.query('SELECT id FROM orders')).slice(0, -1);
    expect(ids.length).toBe(600);
    expect(new Set(ids)).toEqual(new Set(acknowledged));
    await Promise.all(survivors.map((replica) => replica.stop()));
  }, 120_000);

  it('--queue-red holds writes made without a primary and answers them once a primary orders them', async () => {
    const port = await freePort();
    const replica = SqlReplicaProcess.start({ db: join(scratch, 'queued.db'), group: 'queued', name: 'q1', spread: `${port}@127.0.0.1`, replicas: ['q1'], extra: ['--queue-red'] });
    replicas.push(replica);
    const refusing = SqlReplicaProcess.start({ db: join(scratch, 'refusing.db'), group: 'refusing', name: 'q2', spread: `${port}@127.0.0.1`, replicas: ['q2'] });
    replicas.push(refusing);
    expect((await replica.status()).primary).toBe(false);
    const answers = [replica.write('CREATE TABLE t (n)'), replica.write('INSERT INTO t VALUES (1)')];
    expect(await refusing.write('CREATE TABLE t (n)')).toMatch(/^error not in a primary component/);
    const late = await startDaemon({ port, config: soloConfig(port) });
    try {
      expect(await Promise.all(answers)).toEqual([expect.stringMatching(/^ok \d+$/), expect.stringMatching(/^ok \d+$/)]);
      expect(await replica.query('SELECT n FROM t')).toEqual(['1', 'ok']);
      await Promise.all([replica.stop(), refusing.stop()]);
    } finally {
      await late.stop();
    }
  }, 120_000);
});
