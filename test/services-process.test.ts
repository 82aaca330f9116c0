/**
 * `tspread svc` on three real daemons: the replicated counter with three replica
 * processes and clients on every daemon. Replicas are killed (-9) and brought
 * back, hand over proactively and switch style under load; every acknowledged
 * increment must be counted exactly once and every replica end equal.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '../src/client/index.js';
import { counterHandlers, counterInitialState, serve } from '../src/apps/services/index.js';
import { OPERATION_TYPE } from '../src/apps/shared/replicated-group.js';
import { ensureBuilt, ToolProcess } from './fake-daemon/processes.js';
import { waitUntil } from './helpers/log-collectors.js';
import { startRing, type StartedRing } from './helpers/daemon.js';
import { CounterReplica, daemonName, IncrementLoad } from './helpers/service-replicas.js';

let ring: StartedRing;
const replicas: CounterReplica[] = [];
const extraPids: number[] = [];

beforeAll(async () => {
  ensureBuilt();
  ring = await startRing({ count: 3 });
}, 60_000);

afterAll(async () => {
  for (const replica of replicas) replica.kill();
  for (const pid of extraPids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  await ring?.stop();
});

/** A replica on daemon `index`, in sync with the group before this resolves. */
async function replicaOn(index: number, group: string, args: string[] = []): Promise<CounterReplica> {
  const replica = new CounterReplica(ring.daemons[index]!, group, args);
  replicas.push(replica);
  await replica.synced();
  return replica;
}

async function threeReplicas(group: string, args: string[]): Promise<CounterReplica[]> {
  const started: CounterReplica[] = [];
  for (let index = 0; index < 3; index++) started.push(await replicaOn(index, group, args));
  return started;
}

/** Acknowledged results are exactly 1..n, and each replica stopped (after the load) with n. */
async function expectCountedOnce(load: IncrementLoad, stopReplicas: () => Promise<number>[]): Promise<void> {
  await load.stop();
  expect(load.errors).toEqual([]);
  const n = load.results.length;
  expect([...load.results].sort((a, b) => a - b)).toEqual(Array.from({ length: n }, (_, index) => index + 1));
  const stopped = await Promise.all(stopReplicas());
  expect(stopped).toEqual(stopped.map(() => n));
}

async function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const tool = new ToolProcess(args);
  const code = await tool.exited;
  return { code, stdout: tool.stdout, stderr: tool.stderr };
}

const svc = (args: string[]) => run(['svc', ...args]);

describe.each(['active', 'passive'])('%s replicas crashing and coming back', (style) => {
  it(`${style}: counts every acknowledged increment exactly once; all replicas end equal`, async () => {
    const group = `ctr-crash-${style}`;
    const [first, second, third] = await threeReplicas(group, ['--style', style]);
    const load = await IncrementLoad.start(ring.daemons, group);
    await load.advance(60);
    first!.kill(); // in passive style, the primary
    await load.advance(60);
    second!.kill();
    await load.advance(60);
    const back = [await replicaOn(0, group), await replicaOn(1, group)];
    await load.advance(60);
    const survivors = [third!, ...back];
    await expectCountedOnce(load, () => survivors.map((replica) => replica.stop()));
  }, 180_000);
});

describe('proactive recovery', () => {
  it('the primary hands over to a fresh replica under load: no call fails', async () => {
    const group = 'ctr-handover';
    const [primary, ...backups] = await threeReplicas(group, ['--style', 'passive', '--respawn']);
    const load = await IncrementLoad.start(ring.daemons, group);
    await load.advance(60);
    primary!.tool.child.kill('SIGUSR2');
    expect(await primary!.tool.exited).toBe(0);
    const replacementPid = primary!.lines().find((line) => line.msg === 'replacement started')!.replacementPid!;
    extraPids.push(replacementPid);
    await primary!.synced(2); // the replacement shares the old one's stdout
    expect(primary!.lines().some((line) => line.msg === 'retired')).toBe(true);
    await load.advance(60);
    await expectCountedOnce(load, () => [...backups.map((replica) => replica.stop()), primary!.stop(replacementPid)]);
  }, 180_000);
});

describe('proactive recovery on a health check', () => {
  it('a replica whose own check fails starts a replacement and leaves; no call fails', async () => {
    const group = 'ctr-health';
    const others = [await replicaOn(0, group), await replicaOn(1, group)];
    let unhealthy = false;
    let replacement: CounterReplica | undefined;
    const replica = serve(group, counterHandlers, {
      initialState: counterInitialState(),
      connect: () => connect({ daemon: daemonName(ring.daemons[2]!) }),
      health: { check: () => (unhealthy ? 'the test says so' : null) },
      healthGraceMs: 0,
      healthIntervalMs: 50,
      replace: () => {
        replacement = new CounterReplica(ring.daemons[2]!, group);
        replicas.push(replacement);
      },
    });
    await new Promise<void>((resolve) => replica.once('synced', resolve));
    const load = await IncrementLoad.start(ring.daemons, group);
    await load.advance(60);
    unhealthy = true;
    await new Promise<void>((resolve) => replica.once('retired', resolve));
    await replacement!.synced();
    await load.advance(60);
    await expectCountedOnce(load, () => [...others, replacement!].map((running) => running.stop()));
  }, 120_000);
});

describe('style switch', () => {
  it('switching back and forth under load neither loses nor repeats a request', async () => {
    const group = 'ctr-switch';
    const started = await threeReplicas(group, ['--style', 'active']);
    const load = await IncrementLoad.start(ring.daemons, group);
    for (const target of ['passive', 'active', 'passive']) {
      await load.advance(40);
      expect((await svc(['switch', '-g', group, '-s', daemonName(ring.daemons[1]!), target])).code).toBe(0);
    }
    await load.advance(40);
    started[0]!.kill(); // the passive primary, right after a switch
    await load.advance(40);
    await expectCountedOnce(load, () => started.slice(1).map((replica) => replica.stop()));
  }, 180_000);
});

describe('bad input', () => {
  it('gives clear errors and leaves the replicas consistent and serving', async () => {
    const group = 'ctr-bad';
    const started = await threeReplicas(group, ['--style', 'active']);
    const call = (...args: string[]) => svc(['call', '-g', group, '-s', daemonName(ring.daemons[2]!), ...args]);
    expect(await call('increment', '{"by":5}')).toMatchObject({ code: 0, stdout: '5\n' });
    expect(await call('decrement')).toMatchObject({ code: 1, stderr: "tspread svc call: unknown-method: unknown method 'decrement'\n" });
    expect(await call('increment', '{"by":"two"}')).toMatchObject({ code: 1, stderr: 'tspread svc call: handler-error: increment: "by" must be an integer\n' });
    const large = await call('echo', JSON.stringify('x'.repeat(120_000)));
    expect(large.code).toBe(1);
    expect(large.stderr).toMatch(/^tspread svc call: payload-too-large: the call 'echo' is \d+ bytes; at most 100000 are allowed\n$/);
    const notJson = await call('increment', '{by:1}');
    expect(notJson.code).not.toBe(0);
    expect(notJson.stderr).toContain('expected JSON');
    expect(await call('echo', '{"fits":true}', '--majority')).toMatchObject({ code: 0, stdout: '{"fits":true}\n' });
    const nobody = await svc(['call', '-g', 'ctr-nobody', '-s', daemonName(ring.daemons[0]!), 'get', '--timeout', '300']);
    expect(nobody).toMatchObject({ code: 1, stderr: "tspread svc call: timeout: no reply to 'get' from service 'ctr-nobody' within 300 ms\n" });
    // A sender bypassing the client: garbage, and an oversized call the replicas refuse themselves.
    const rogue = await connect({ daemon: daemonName(ring.daemons[0]!) });
    const answers: unknown[] = [];
    rogue.on('message', (message) => answers.push(JSON.parse(Buffer.from(message.data).toString())));
    rogue.multicast(group, 'not json at all', { service: 'agreed', messType: OPERATION_TYPE });
    const oversized = { k: 'q', c: 'rogue', n: 1, d: 1, to: rogue.privateGroup, m: 'echo', a: 'x'.repeat(120_000) };
    rogue.multicast(group, JSON.stringify(oversized), { service: 'agreed', messType: OPERATION_TYPE });
    await waitUntil(() => answers.length === 3, () => `rogue answers: ${JSON.stringify(answers)}`);
    expect(answers).toEqual(Array(3).fill(expect.objectContaining({ n: 1, r: { ok: false, error: { code: 'payload-too-large', message: "the arguments of 'echo' are over 100000 bytes" } } })));
    await rogue.disconnect();
    expect(await call('increment')).toMatchObject({ code: 0, stdout: '6\n' });
    expect(await Promise.all(started.map((replica) => replica.stop()))).toEqual([6, 6, 6]);
    expect(started.every((replica) => replica.tool.stdout.includes('ignored a message that is not a service operation'))).toBe(true);
  }, 120_000);
});

describe('help', () => {
  it('documents the subcommands', async () => {
    const help = await svc(['--help']);
    expect(help.stdout).toMatch(/counter[\s\S]*call[\s\S]*switch/);
    expect((await run(['service', 'counter', '--help'])).stdout).toContain('--respawn');
  });
});
