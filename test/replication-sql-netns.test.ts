/**
 * Replicated SQLite through real faults: three daemons, each in its own network namespace,
 * one `tspread sql` replica per daemon, writers on every replica running a transfers
 * workload (each transfer a BEGIN … COMMIT block that moves money and records itself in a
 * ledger). Through a partition and its heal, a replica killed with kill -9 and restarted, and
 * every daemon killed and restarted:
 *  - the cut-off replica answers `error` while the other two keep committing;
 *  - afterwards every replica's database is identical (same digest at the same position);
 *  - every transfer acknowledged `ok` is in the ledger exactly once, none twice;
 *  - the total of the balances is constant at every replica, and each balance is what the
 *    ledger says it should be.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt } from './fake-daemon/processes.js';
import { CLIENT_PORT, SpreadLab } from './helpers/netns-spread.js';
import { FailoverWriter, SqlReplicaProcess } from './helpers/sql-replicas.js';

const NAMES = ['r1', 'r2', 'r3'];
const ACCOUNTS = 10;
const OPENING_BALANCE = 1000;

let lab: SpreadLab;
let scratch: string;
const replicas: SqlReplicaProcess[] = [];
const acknowledged = new Set<string>();
let stopWriters = false;
let writers: Promise<void>[] = [];

function startReplica(index: number): SqlReplicaProcess {
  const replica = SqlReplicaProcess.start({
    db: join(scratch, `${NAMES[index]}.db`),
    group: 'bank',
    name: NAMES[index]!,
    spread: String(CLIENT_PORT),
    socketDir: lab.daemons[index]!.unixDir,
    replicas: NAMES,
    extra: ['--log-level', 'info'],
  });
  replicas[index] = replica;
  return replica;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Sequential transfers through replica `index` (whichever process runs it now). */
/** Each writer's next transfer number, kept across the scenarios so keys stay unique. */
const nextTransfer = new Map<string, number>();

async function writer(index: number, id: string): Promise<void> {
  while (!stopWriters) {
    const n = nextTransfer.get(id) ?? 0;
    nextTransfer.set(id, n + 1);
    const replica = replicas[index]!;
    if (!replica.alive) {
      await sleep(50);
      continue;
    }
    const from = (n * 3 + index) % ACCOUNTS;
    const to = (from + 1 + (n % (ACCOUNTS - 1))) % ACCOUNTS;
    const amount = (n % 40) + 1;
    const answer = await replica.block([
      `UPDATE account SET balance = balance - ${amount} WHERE id = ${from}`,
      `UPDATE account SET balance = balance + ${amount} WHERE id = ${to}`,
      `INSERT INTO ledger (writer, n, source, target, amount) VALUES ('${id}', ${n}, ${from}, ${to}, ${amount})`,
    ]);
    if (/^ok \d+$/.test(answer)) acknowledged.add(`${id}:${n}`);
    else if (answer.startsWith('error not in a primary component') || answer.startsWith('error in doubt')) await sleep(20);
    else if (answer !== 'error replica exited' && !answer.startsWith('error CHECK constraint failed')) throw new Error(`${id}: unexpected answer ${answer}`);
  }
}

function startWriters(): void {
  stopWriters = false;
  writers = NAMES.flatMap((name, index) => [writer(index, `${name}a`), writer(index, `${name}b`)]);
}

async function stopAllWriters(): Promise<void> {
  stopWriters = true;
  await Promise.all(writers);
}

/** Acknowledged transfers of one replica (counted from its writers' answers). */
function acknowledgedBy(index: number): number {
  return [...acknowledged].filter((key) => key.startsWith(NAMES[index]!)).length;
}

async function untilAcknowledged(indexes: number[], more: number, timeoutMs = 60_000): Promise<void> {
  const targets = indexes.map((index) => acknowledgedBy(index) + more);
  const deadline = Date.now() + timeoutMs;
  while (indexes.some((index, i) => acknowledgedBy(index) < targets[i]!)) {
    if (Date.now() > deadline) {
      const statuses = await Promise.all(replicas.map(async (replica) => `${replica.args.name}: ${JSON.stringify(await replica.status())}\n${replica.tool.stderr.split('\n').slice(-8).join('\n')}`));
      throw new Error(`writers through ${indexes.join(',')} did not commit ${more} more in time\n${statuses.join('\n')}\n${lab.tails(5)}`);
    }
    await sleep(50);
  }
}

/** Waits for every replica to be primary with the same digest at the same position, then checks the ledger and balances. */
async function checkConverged(timeoutMs = 60_000): Promise<void> {
  await Promise.all(replicas.map((replica) => replica.untilPrimary(timeoutMs)));
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const digests = await Promise.all(replicas.map((replica) => replica.digest()));
    if (new Set(digests.map((d) => `${d.digest}@${d.position}`)).size === 1) break;
    if (Date.now() > deadline) throw new Error(`databases differ: ${JSON.stringify(digests)}`);
    await sleep(200);
  }
  for (const replica of replicas) {
    const total = await replica.query('SELECT sum(balance) FROM account');
    expect(total).toEqual([String(ACCOUNTS * OPENING_BALANCE), 'ok']);
    const ledger = (await replica.query("SELECT writer || ':' || n, count(*) FROM ledger GROUP BY writer, n")).slice(0, -1);
    const counts = new Map(ledger.map((line) => line.split('\t') as [string, string]));
    for (const [key, count] of counts) expect(count, `${key} applied ${count} times`).toBe('1');
    for (const key of acknowledged) expect(counts.has(key), `acknowledged ${key} missing at ${replica.args.name}`).toBe(true);
    const mismatched = await replica.query(
      `SELECT a.id FROM account a WHERE a.balance != ${OPENING_BALANCE}` +
        ' + coalesce((SELECT sum(amount) FROM ledger WHERE target = a.id), 0)' +
        ' - coalesce((SELECT sum(amount) FROM ledger WHERE source = a.id), 0)',
    );
    expect(mismatched).toEqual(['ok']);
  }
}

beforeAll(async () => {
  ensureBuilt();
  scratch = mkdtempSync(join(tmpdir(), 'tspread-sql-netns-'));
  lab = await SpreadLab.start(3);
  NAMES.forEach((_, index) => startReplica(index));
  await Promise.all(replicas.map((replica) => replica.untilPrimary(60_000)));
  const first = replicas[0]!;
  expect(await first.write('CREATE TABLE account (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL CHECK (balance >= 0))')).toMatch(/^ok/);
  expect(await first.write('CREATE TABLE ledger (id INTEGER PRIMARY KEY, writer TEXT, n INTEGER, source INTEGER, target INTEGER, amount INTEGER)')).toMatch(/^ok/);
  const values = Array.from({ length: ACCOUNTS }, (_, id) => `(${id}, ${OPENING_BALANCE})`).join(', ');
  expect(await first.write(`INSERT INTO account VALUES ${values}`)).toMatch(/^ok/);
}, 120_000);

afterAll(async () => {
  stopWriters = true;
  for (const replica of replicas) replica?.kill();
  await lab?.destroy();
  if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true });
});

describe('tspread sql, three daemons in network namespaces', () => {
  it('partition: the cut-off replica refuses, the other two keep committing; heal: identical databases, every acknowledged transfer once', async () => {
    startWriters();
    await untilAcknowledged([0, 1, 2], 30);
    lab.partition([[0, 1], [2]]);
    // The cut-off replica learns it is outside the primary; the majority keeps going.
    const deadline = Date.now() + 30_000;
    while ((await replicas[2]!.status()).primary) {
      if (Date.now() > deadline) throw new Error(`r3 still primary after the partition\n${lab.tails(5)}`);
      await sleep(100);
    }
    // A write sent now is refused.
    const probe = replicas[2]!.write("INSERT INTO ledger (writer, n) VALUES ('probe', 0)");
    const during = acknowledgedBy(2);
    await untilAcknowledged([0, 1], 100);
    expect(acknowledgedBy(2)).toBe(during);
    lab.heal();
    expect(await probe).toMatch(/^error not in a primary component/);
    await untilAcknowledged([0, 1, 2], 30);
    await stopAllWriters();
    await checkConverged();
  }, 240_000);

  it('a replica killed with kill -9 mid-stream restarts and catches up', async () => {
    startWriters();
    await untilAcknowledged([0, 1, 2], 30);
    replicas[1]!.kill();
    await untilAcknowledged([0, 2], 50);
    startReplica(1);
    await untilAcknowledged([0, 1, 2], 30);
    await stopAllWriters();
    await checkConverged();
  }, 240_000);

  it('every daemon killed and restarted: the replicas reconnect and nothing acknowledged is lost', async () => {
    startWriters();
    await untilAcknowledged([0, 1, 2], 30);
    for (const daemon of lab.daemons) lab.kill(daemon.index);
    await sleep(500);
    await Promise.all(lab.daemons.map((daemon) => lab.restart(daemon.index)));
    await untilAcknowledged([0, 1, 2], 30, 90_000);
    await stopAllWriters();
    await checkConverged(90_000);
  }, 300_000);

  it('standby take-over: a client writing through r1 fails over to r2 when r1 is killed, no acknowledged write lost', async () => {
    expect(await replicas[0]!.write('CREATE TABLE orders (id TEXT PRIMARY KEY, amount INTEGER)')).toMatch(/^ok \d+$/);
    const client = new FailoverWriter([replicas[0]!, replicas[1]!]);
    const acknowledgedOrders: string[] = [];
    const writing = (async () => {
      for (let n = 0; n < 200; n++) {
        expect(await client.write(`INSERT OR IGNORE INTO orders VALUES ('o-${n}', ${n})`)).toMatch(/^ok \d+$/);
        acknowledgedOrders.push(`o-${n}`);
      }
    })();
    while (acknowledgedOrders.length < 50) await sleep(20);
    replicas[0]!.kill();
    await writing;
    expect(client.failovers).toBe(1);
    startReplica(0);
    await checkConverged();
    const ids = (await replicas[0]!.query('SELECT id FROM orders')).slice(0, -1);
    expect(ids.length).toBe(200);
    expect(new Set(ids)).toEqual(new Set(acknowledgedOrders));
  }, 240_000);
});
