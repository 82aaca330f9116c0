/** What a handler receives, and the errors the messaging API raises. */
import type { Body, Headers } from './envelope.js';

export interface ReceivedMessage {
  /** The queue or topic it came from. */
  readonly source: string;
  /** Its id in the queue (0 for a topic message). */
  readonly id: number;
  readonly body: Body;
  readonly headers: Headers;
  readonly idempotencyKey: string | undefined;
  /** 1 on first delivery; more when a consumer left before acknowledging it or gave it back. */
  readonly deliveryCount: number;
  /** True for a request sent with ask(): answer it with reply(). */
  readonly isRequest: boolean;
  /** Sends the reply to the asker (a private message); a no-op for plain messages. */
  reply(body: Body, options?: { headers?: Headers }): void;
}

/** A handler; the message is acknowledged when it returns (or its promise resolves) and given back when it throws. */
export type Handler = (message: ReceivedMessage) => void | Promise<void>;

/** ask() got no reply in time. */
export class AskTimeoutError extends Error {
  override name = 'AskTimeoutError';
  constructor(queue: string, timeoutMs: number) {
    super(`no reply from queue "${queue}" within ${timeoutMs} ms`);
  }
}

/** The messaging client is closed (or its daemon session was lost). */
export class MessagingClosedError extends Error {
  override name = 'MessagingClosedError';
}

/** Queue and topic names become Spread group names behind a 3-byte prefix. */
export const NAME_BYTES_MAX = 28;

export function checkName(kind: 'queue' | 'topic', name: string): void {
  if (typeof name !== 'string' || name.length === 0 || name.length > NAME_BYTES_MAX || !/^[\x21-\x7e]+$/.test(name) || name.includes('#')) {
    throw new RangeError(`a ${kind} name must have 1..${NAME_BYTES_MAX} printable ASCII characters without '#' or spaces, not ${JSON.stringify(name)}`);
  }
}

export const queueGroup = (queue: string): string => `mq.${queue}`;
export const topicGroup = (topic: string): string => `mt.${topic}`;
