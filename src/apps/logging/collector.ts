/**
 * The collector (spreadlogd): one session per Spread block of its configuration,
 * joined to the groups of its Log blocks and to their presence groups (so senders
 * see it; wire.ts); every data message's lines go to the files of the Log blocks of
 * its groups. `reopen()` (SIGHUP) reopens every file. A lost daemon is retried
 * until it is back; the gap is logged, since lines ordered in the meantime never
 * reach this collector.
 */
import { connect, type DataMessage, type MembershipMessage, type Session } from '../../client/index.js';
import type { LogBlock, LogdConfig, SpreadBlock } from './config.js';
import { filterLines } from './line-filter.js';
import { countLines } from './line-splitter.js';
import { LogFile } from './log-file.js';
import { errorText, nextRetryMs, silentLogger, type Logger } from './logger.js';
import { collectorPrivateName, isCollectorMember, parseSequencedBatch, presenceGroup, SEQUENCED_MESS_TYPE } from './wire.js';

export interface CollectorOptions {
  logger?: Logger;
  /** Directory of local daemons' Unix sockets (default /tmp). */
  unixSocketDir?: string;
}

/** Senders remembered for duplicate detection; the least recently heard is forgotten first. */
const SENDERS_REMEMBERED_MAX = 10_000;
const NEWLINE = 0x0a;

export class Collector {
  readonly #connections: SpreadConnection[];
  readonly #files: LogFile[] = [];

  constructor(config: LogdConfig, options: CollectorOptions = {}) {
    const logger = options.logger ?? silentLogger;
    this.#connections = config.spreads.map((spread) => {
      const outputs = spread.logs.map((log) => {
        const file = new LogFile(log.file, config.bufferSize, logger);
        this.#files.push(file);
        return { log, file };
      });
      return new SpreadConnection(spread, outputs, logger, options.unixSocketDir);
    });
  }

  /** Opens every file (a file that fails is reported; the others work) and connects. */
  start(): void {
    for (const file of this.#files) file.open();
    for (const connection of this.#connections) connection.start();
  }

  /** Reopens every file: after logrotate moved them, new files are created. */
  reopen(): void {
    for (const file of this.#files) file.open();
  }

  async stop(): Promise<void> {
    await Promise.all(this.#connections.map((connection) => connection.stop()));
    for (const file of this.#files) file.close();
  }

  get files(): readonly LogFile[] {
    return this.#files;
  }
}

interface Output {
  log: LogBlock;
  file: LogFile;
}

class SpreadConnection {
  readonly #daemon: string;
  readonly #groups: string[];
  readonly #lastSeqBySender = new Map<string, number>();
  #session: Session | null = null;
  #stopped = false;
  #retryMs = 0;
  #retryTimer: NodeJS.Timeout | undefined;
  #lostAt: number | null = null;
  duplicatesSkipped = 0;

  constructor(
    readonly spread: SpreadBlock,
    readonly outputs: Output[],
    readonly log: Logger,
    readonly unixSocketDir: string | undefined,
  ) {
    this.#daemon = spread.host === undefined ? String(spread.port) : `${spread.port}@${spread.host}`;
    this.#groups = [...new Set(outputs.map((output) => output.log.group))];
  }

  start(): void {
    void this.#connect();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#retryTimer);
    const session = this.#session;
    this.#session = null;
    await session?.disconnect();
  }

  async #connect(): Promise<void> {
    if (this.#stopped) return;
    let session: Session;
    try {
      session = await connect({ daemon: this.#daemon, privateName: collectorPrivateName(), unixSocketDir: this.unixSocketDir });
    } catch (error) {
      if (this.#retryMs === 0) this.log.warn({ daemon: this.#daemon, error: errorText(error) }, 'cannot reach the daemon; retrying');
      this.#retryMs = nextRetryMs(this.#retryMs);
      this.#retryTimer = setTimeout(() => void this.#connect(), this.#retryMs);
      return;
    }
    if (this.#stopped) {
      await session.disconnect();
      return;
    }
    this.#retryMs = 0;
    this.#session = session;
    session.on('message', (message) => this.#onMessage(message));
    session.on('membership', (message) => this.#onMembership(message));
    session.on('close', (error) => this.#onClose(session, error));
    // Data groups first: a sender that sees this collector in a presence view knows it receives the group.
    for (const group of this.#groups) session.join(group);
    for (const group of this.#groups) session.join(presenceGroup(group));
    if (this.#lostAt === null) {
      this.log.info({ daemon: this.#daemon, privateGroup: session.privateGroup, groups: this.#groups }, 'connected');
    } else {
      this.log.warn(
        { daemon: this.#daemon, groups: this.#groups, gapMs: Date.now() - this.#lostAt, since: new Date(this.#lostAt).toISOString() },
        'reconnected: lines sent to these groups during the gap are missing from these files',
      );
      this.#lostAt = null;
    }
  }

  #onClose(session: Session, error: Error | undefined): void {
    if (this.#session !== session) return;
    this.#session = null;
    this.#lostAt = Date.now();
    this.log.warn({ daemon: this.#daemon, groups: this.#groups, error: error?.message }, 'lost the daemon: reconnecting');
    this.#retryTimer = setTimeout(() => void this.#connect(), nextRetryMs(0));
  }

  #onMembership(message: MembershipMessage): void {
    if (message.transitional || !this.#groups.includes(message.group)) return;
    this.log.info(
      { group: message.group, cause: message.cause, members: message.members.length, collectors: message.members.filter(isCollectorMember).length },
      'view',
    );
  }

  #onMessage(message: DataMessage): void {
    const lines = this.#linesOf(message);
    if (lines === null) return;
    const lineCount = countLines(lines);
    const now = memoizedNow();
    for (const { log, file } of this.outputs) {
      if (!message.groups.includes(log.group)) continue;
      const kept = filterLines(log, lines, lineCount, now);
      if (kept.lines > 0) file.write(kept.bytes, kept.lines);
    }
  }

  /** The message's lines, each ending in '\n'; null for a duplicate or malformed batch. */
  #linesOf(message: DataMessage): Buffer | null {
    let data = message.data;
    if (message.messType === SEQUENCED_MESS_TYPE) {
      const batch = parseSequencedBatch(data);
      if (batch === null) {
        this.log.warn({ sender: message.sender }, 'malformed batch header: message skipped');
        return null;
      }
      const last = this.#lastSeqBySender.get(batch.senderId);
      if (last !== undefined && batch.seq <= last) {
        this.duplicatesSkipped++;
        return null;
      }
      this.#remember(batch.senderId, batch.seq);
      data = batch.lines;
    }
    const bytes = Buffer.from(data.buffer, data.byteOffset, data.length);
    if (bytes.length === 0) return message.messType === SEQUENCED_MESS_TYPE ? null : Buffer.from('\n'); // a plain message is one line
    return bytes[bytes.length - 1] === NEWLINE ? bytes : Buffer.concat([bytes, Buffer.from('\n')]);
  }

  #remember(senderId: string, seq: number): void {
    this.#lastSeqBySender.delete(senderId);
    this.#lastSeqBySender.set(senderId, seq);
    if (this.#lastSeqBySender.size > SENDERS_REMEMBERED_MAX) {
      this.#lastSeqBySender.delete(this.#lastSeqBySender.keys().next().value as string);
    }
  }
}


/** One clock reading per message, taken only if a Log block rewrites timestamps. */
function memoizedNow(): () => Date {
  let now: Date | undefined;
  return () => (now ??= new Date());
}
