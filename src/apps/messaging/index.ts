/**
 * tspread/messaging: queues with competing consumers, topics and request/reply
 * on Spread groups, on the public client API only (docs/messaging.md).
 */
export { Messaging } from './messaging.js';
export type { MessagingOptions, SendOptions, AskOptions, Reply } from './messaging.js';
export { Consumer, DEFAULT_PREFETCH } from './consumer.js';
export type { ConsumeOptions } from './consumer.js';
export { AskTimeoutError, MessagingClosedError } from './message.js';
export type { Handler, ReceivedMessage } from './message.js';
export { MessageFormatError, RECORD_BYTES_MAX } from './envelope.js';
export type { Body, Headers } from './envelope.js';
export { QueueState, DEFAULT_LIMITS } from './queue-state.js';
export type { QueueEntry, QueueLimits, QueueCounters } from './queue-state.js';
