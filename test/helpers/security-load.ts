/**
 * AGREED load between real clients for the security tests: senders multicast numbered
 * messages to one group, receivers record what they deliver. check() says whether every
 * receiver delivered every message, in one total order, each sender's in its own order.
 */
import type { Message, Session } from '../../src/client/index.js';

export interface AgreedLoad {
  /** Resolves when every sender has sent `count` messages. */
  sent: Promise<void>;
  /** Resolves once every receiver delivered everything (rejects after `timeoutMs`). */
  delivered(timeoutMs: number): Promise<void>;
  /** Problems found (empty: nothing lost, one order). */
  check(): string[];
  /** What each receiver delivered so far. */
  received: string[][];
}

/** Resolves once `session` got a membership of `group` with `members` members. */
export function waitForMembers(session: Session, group: string, members: number, timeoutMs = 20_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${session.privateGroup}: ${group} never had ${members} members`)), timeoutMs);
    const listener = (message: Message) => {
      if (message.kind !== 'membership' || message.group !== group || message.members.length !== members) return;
      clearTimeout(timer);
      session.off('membership', listener);
      resolve();
    };
    session.on('membership', listener);
  });
}

/**
 * Starts the load: each sender sends `count` messages of `bytes` bytes (a `marker` text
 * at the start, then its name and number), `burst` at a time, one burst per `pauseMs`.
 */
export function startAgreedLoad(
  senders: Session[],
  receivers: Session[],
  group: string,
  options: { count: number; bytes?: number; burst?: number; pauseMs?: number; marker?: string },
): AgreedLoad {
  const received: string[][] = receivers.map(() => []);
  const expected = senders.length * options.count;
  const waiters: Array<() => void> = [];
  receivers.forEach((session, index) => {
    session.on('message', (message) => {
      if (!message.groups.includes(group)) return;
      const text = Buffer.from(message.data).toString('latin1');
      received[index].push(text.slice(0, text.indexOf('|')));
      if (received.every((list) => list.length >= expected)) for (const wake of waiters.splice(0)) wake();
    });
  });
  const burst = options.burst ?? 20;
  const pauseMs = options.pauseMs ?? 5;
  const marker = options.marker ?? '';
  const send = async (session: Session, name: string) => {
    for (let i = 0; i < options.count; i++) {
      const head = `${marker}${name}:${i}|`;
      const body = Buffer.alloc(Math.max(options.bytes ?? 100, head.length), 'x');
      body.write(head, 'latin1');
      if (!session.multicast(group, body)) await session.drained();
      if ((i + 1) % burst === 0) await new Promise((resolve) => setTimeout(resolve, pauseMs));
    }
  };
  const sent = Promise.all(senders.map((session, index) => send(session, `s${index}`))).then(() => undefined);
  return {
    sent,
    received,
    delivered(timeoutMs) {
      if (received.every((list) => list.length >= expected)) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`not delivered in ${timeoutMs} ms: ${received.map((list) => list.length).join(', ')} of ${expected}`)),
          timeoutMs,
        );
        waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    },
    check() {
      const problems: string[] = [];
      const first = received[0].map((text) => text.slice(marker.length));
      received.forEach((list, index) => {
        if (list.length !== expected) problems.push(`receiver ${index} delivered ${list.length} of ${expected}`);
        const mismatch = list.findIndex((text, at) => text.slice(marker.length) !== first[at]);
        if (mismatch >= 0) problems.push(`receiver ${index} differs from receiver 0 at ${mismatch}`);
      });
      senders.forEach((_, sender) => {
        const numbers = first.filter((text) => text.startsWith(`s${sender}:`)).map((text) => Number(text.split(':')[1]));
        if (numbers.some((value, at) => value !== at)) problems.push(`sender ${sender}'s messages out of order or missing`);
      });
      return problems;
    },
  };
}
