/**
 * Replica processes of test/fixtures/replication-map-replica.ts for the replication tests and
 * benchmark: start one per daemon, read their acknowledgements, compare their maps.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, ToolProcess } from '../fake-daemon/processes.js';
import { waitUntil } from './log-collectors.js';

export const REPLICA_SCRIPT = join(ROOT, 'dist/test/fixtures/replication-map-replica.js');

export interface ReplicaSpec {
  name: string;
  dataDir: string;
  /** Arguments that reach its daemon: ['--daemon', '4803@127.0.0.1'] or ['--unix-dir', dir]. */
  daemonArgs: string[];
  replicas: string[];
  group: string;
}

export class ReplicaProcess {
  readonly spec: ReplicaSpec;
  process: ToolProcess;
  /** Output of earlier incarnations (killed ones), so their acknowledgements still count. */
  #earlierOutput = '';

  constructor(spec: ReplicaSpec) {
    this.spec = spec;
    this.process = this.#spawn();
  }

  #spawn(): ToolProcess {
    const { name, dataDir, daemonArgs, replicas, group } = this.spec;
    return new ToolProcess(['--name', name, '--data', dataDir, '--group', group, '--replicas', replicas.join(','), ...daemonArgs], REPLICA_SCRIPT);
  }

  async ready(): Promise<void> {
    await this.process.waitFor(/^ready$/m, 20_000);
  }

  /** kill -9, then a new process on the same dataDir. */
  async restart(): Promise<void> {
    this.kill();
    await this.process.exited;
    this.#earlierOutput += this.process.stdout;
    this.process = this.#spawn();
    await this.ready();
  }

  kill(): void {
    this.process.kill();
  }

  /** Sends a command and waits for the first new line starting with `answer`. */
  async ask(command: string, answer: string, timeoutMs = 20_000): Promise<string> {
    const from = this.process.stdout.length;
    this.process.send(command);
    const text = await this.process.waitFor(new RegExp(`^${answer}.*$`, 'm'), timeoutMs, from);
    return text.match(new RegExp(`^${answer}.*$`, 'm'))![0];
  }

  async status(): Promise<{ primary: boolean; lastGreen: number; red: number; members: string[] }> {
    const [, primary, lastGreen, red, members] = (await this.ask('status', 'status ')).split(' ');
    return { primary: primary === 'primary', lastGreen: Number(lastGreen), red: Number(red), members: members ? members.split(',') : [] };
  }

  /** Every "ack KEY POSITION" this replica printed, in all its incarnations. */
  acknowledged(): Map<string, number> {
    const acks = new Map<string, number>();
    for (const match of (this.#earlierOutput + this.process.stdout).matchAll(/^ack (\S+) (\d+)$/gm)) acks.set(match[1]!, Number(match[2]));
    return acks;
  }

  refusals(): number {
    return [...(this.#earlierOutput + this.process.stdout).matchAll(/^nack /gm)].length;
  }
}

/** Waits until all replicas are in one primary with every member and at the same green position. */
export async function untilConverged(replicas: ReplicaProcess[], timeoutMs = 60_000): Promise<void> {
  await waitUntil(
    async () => {
      const statuses = await Promise.all(replicas.map((replica) => replica.status()));
      return statuses.every((status) => status.primary && status.members.length === replicas.length && status.lastGreen === statuses[0]!.lastGreen && status.red === 0);
    },
    'the replicas converge',
    timeoutMs,
  );
}

/**
 * Checks a healed group: identical maps, and every write any replica acknowledged present with
 * its value (the stream's value is the key's counter). Returns the number of acknowledged writes.
 */
export async function checkAcknowledgedWrites(replicas: ReplicaProcess[], scratch: string): Promise<{ acknowledged: number; dumps: string[]; verified: string[] }> {
  const expected: Record<string, number> = {};
  for (const replica of replicas) for (const key of replica.acknowledged().keys()) expected[key] = Number(key.slice(key.lastIndexOf('-') + 1));
  const file = join(scratch, 'acknowledged.json');
  writeFileSync(file, JSON.stringify(expected));
  const dumps = await Promise.all(replicas.map((replica) => replica.ask('dump', 'dump ')));
  const verified = await Promise.all(replicas.map((replica) => replica.ask(`verify ${file}`, 'verified ')));
  return { acknowledged: Object.keys(expected).length, dumps, verified };
}

/** Kills every replica process (by pid) and waits for the exits. */
export async function killReplicas(replicas: ReplicaProcess[]): Promise<void> {
  for (const replica of replicas) replica.kill();
  await Promise.all(replicas.map((replica) => replica.process.exited));
}
