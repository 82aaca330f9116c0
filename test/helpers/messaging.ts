/** Helpers for the tspread/messaging process tests: a formed ring and `tspread mq` processes on it. */
import { connect, type Session } from '../../src/client/index.js';
import { SPREAD_LAN_TIMEOUTS, startRing, type StartedRing } from './daemon.js';
import { ToolProcess } from '../fake-daemon/processes.js';
import { waitUntil } from './log-collectors.js';

/** Resolves once a probe group joined on every daemon has a member from each: the ring has formed. */
export async function waitForRing(ring: StartedRing, timeoutMs = 90_000): Promise<void> {
  const group = `probe${Math.floor(Math.random() * 1e6)}`;
  const sessions: Session[] = [];
  try {
    for (const daemon of ring.daemons) sessions.push(await connect({ daemon: `${daemon.port}@127.0.0.1` }));
    let size = 0;
    sessions[0]!.on('membership', (message) => {
      if (message.group === group && !message.transitional) size = message.members.length;
    });
    for (const session of sessions) session.join(group);
    await waitUntil(() => size === sessions.length, () => `ring of ${sessions.length} not formed (probe view of ${size})`, timeoutMs);
  } finally {
    await Promise.all(sessions.map((session) => session.disconnect()));
  }
}

/**
 * Three daemons formed into one ring (Spread's LAN timeouts). Tried up to three times: on a
 * shared machine another run may take a port between freePort() and the daemon's bind.
 */
export async function startFormedRing(): Promise<StartedRing> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    let ring: StartedRing | undefined;
    try {
      ring = await startRing({ count: 3, extraLines: SPREAD_LAN_TIMEOUTS });
      await waitForRing(ring);
      return ring;
    } catch (error) {
      lastError = error;
      await ring?.stop();
    }
  }
  throw lastError;
}

export const daemonArgs = (ring: StartedRing, index: number): string[] => ['-s', `${ring.daemons[index]!.port}@127.0.0.1`];

/** `tspread mq consume` on daemon `index`; resolves once it is registered in the queue's state. */
export async function startConsumer(ring: StartedRing, index: number, queue: string, extra: string[] = []): Promise<ToolProcess> {
  const tool = new ToolProcess(['mq', 'consume', queue, '--json-lines', ...daemonArgs(ring, index), ...extra]);
  await waitUntil(() => tool.stderr.includes(`consuming ${queue}`) || tool.child.exitCode !== null, () => `consumer on d${index + 1} not ready: ${tool.stderr}`);
  if (tool.child.exitCode !== null) throw new Error(`consumer exited: ${tool.stderr}`);
  return tool;
}

export interface ConsumedLine {
  id: number;
  deliveryCount: number;
  body: string;
}

export function consumedLines(tool: ToolProcess): ConsumedLine[] {
  return tool.stdout
    .split('\n')
    .filter((line) => line.startsWith('{') && line.endsWith('}'))
    .map((line) => JSON.parse(line) as ConsumedLine);
}
