/**
 * LogSender: ships lines to a group and survives daemon restarts.
 *
 * Lines are held until the sender's daemon has ordered them: after each round of
 * batches it sends a CONFIRM note to its own private group, and since Spread orders
 * one session's AGREED/SAFE messages in send order, the note coming back confirms
 * every batch before it. When the session dies, unconfirmed batches are re-sent on
 * the next session with their original id and seq (collectors skip the ones they
 * already wrote). Held bytes are bounded: past the bound new lines are dropped and
 * counted, and the count is logged, so nothing is lost silently.
 *
 * With `collectors` > 0 the sender sends only while its presence group shows that
 * many collectors (see wire.ts): after a daemon restart it holds lines until its
 * daemon has merged with a collector's, instead of sending into a lone partition.
 */
import { connect, type DataMessage, type MembershipMessage, type Service, type Session } from '../../client/index.js';
import { countLines, type LineRun } from './line-splitter.js';
import { errorText, nextRetryMs, silentLogger, type Logger } from './logger.js';
import {
  BATCH_BYTES_MAX,
  batchHeader,
  CONFIRM_MESS_TYPE,
  isCollectorMember,
  presenceGroup,
  randomLetters,
  SEQUENCED_MESS_TYPE,
} from './wire.js';

export interface LogSenderOptions {
  /** Spread name of the daemon: "4803" (Unix socket) or "4803@host". */
  daemon?: string;
  group: string;
  /** Default 'agreed' (one total order: identical files at every collector). */
  service?: Service;
  unixSocketDir?: string;
  /** Bytes held (unsent plus unconfirmed) before new lines are dropped; default 64 MiB. */
  bufferBytes?: number;
  /** Collectors that must be present before sending; default 1, 0 = send regardless. */
  collectors?: number;
  /**
   * One line per message, without its newline or a batch header, as Spread's
   * mod_log_spread sends: for collectors other than tspread's. Slower, and a line
   * re-sent after a reconnect may then be written twice.
   */
  plain?: boolean;
  logger?: Logger;
}

/** What a sender did, for its log and for tests. */
export interface LogSenderStats {
  linesIn: number;
  linesConfirmed: number;
  linesDropped: number;
  bytesDropped: number;
  batchesResent: number;
}

interface Batch {
  seq: number;
  data: Buffer;
  lines: number;
  /** It went out on an earlier session, which died before confirming it. */
  sent: boolean;
}

const BUFFER_BYTES_DEFAULT = 64 * 1024 * 1024;
const NEWLINE = 0x0a;

export class LogSender {
  readonly senderId = randomLetters(10);
  readonly stats: LogSenderStats = { linesIn: 0, linesConfirmed: 0, linesDropped: 0, bytesDropped: 0, batchesResent: 0 };
  readonly #options: Required<Omit<LogSenderOptions, 'unixSocketDir'>> & { unixSocketDir?: string };
  readonly #log: Logger;
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #pendingLines = 0;
  #unconfirmed: Batch[] = [];
  #unconfirmedBytes = 0;
  /** How many of #unconfirmed went out on the current session. */
  #sentCount = 0;
  #nextSeq = 1;
  #session: Session | null = null;
  #ready = false;
  #flushing = false;
  #flushQueued = false;
  #closing = false;
  #retryMs = 0;
  #retryTimer: NodeJS.Timeout | undefined;
  /** Drops since the last report. */
  #unreportedDrops = { lines: 0, bytes: 0 };
  #everConnected = false;
  #outageReported = false;
  #idleWaiters: (() => void)[] = [];
  #roomWaiters: { heldBytes: number; wake: () => void }[] = [];

  constructor(options: LogSenderOptions) {
    this.#options = {
      daemon: options.daemon ?? '',
      group: options.group,
      service: options.service ?? 'agreed',
      unixSocketDir: options.unixSocketDir,
      bufferBytes: options.bufferBytes ?? BUFFER_BYTES_DEFAULT,
      collectors: options.collectors ?? 1,
      plain: options.plain ?? false,
      logger: options.logger ?? silentLogger,
    };
    this.#log = this.#options.logger;
    if (this.#options.collectors > 0) presenceGroup(options.group); // fail early on a too-long name
  }

  /** Starts connecting (and reconnecting whenever the session is lost). */
  start(): void {
    void this.#connect();
  }

  /** Bytes held: not yet sent, or sent and not yet confirmed. */
  get heldBytes(): number {
    return this.#pendingBytes + this.#unconfirmedBytes;
  }

  /** Takes whole lines; returns false when they were dropped because the buffer is full. */
  write(run: LineRun): boolean {
    if (run.lines === 0) return true;
    this.stats.linesIn += run.lines;
    if (this.heldBytes + run.bytes.length > this.#options.bufferBytes) {
      if (this.#unreportedDrops.lines === 0) {
        this.#log.warn({ bufferBytes: this.#options.bufferBytes }, 'buffer full: dropping lines until the daemon takes more');
      }
      this.#unreportedDrops.lines += run.lines;
      this.#unreportedDrops.bytes += run.bytes.length;
      this.stats.linesDropped += run.lines;
      this.stats.bytesDropped += run.bytes.length;
      return false;
    }
    this.#reportDrops();
    this.#pending.push(run.bytes);
    this.#pendingBytes += run.bytes.length;
    this.#pendingLines += run.lines;
    this.#scheduleFlush();
    return true;
  }

  /** Resolves once at most `heldBytes` are held (for inputs that can wait, such as a file). */
  whenHeldBelow(heldBytes: number): Promise<void> {
    if (this.heldBytes <= heldBytes) return Promise.resolve();
    return new Promise((wake) => this.#roomWaiters.push({ heldBytes, wake }));
  }

  /**
   * Sends what it holds and waits up to `lingerMs` for the daemon to confirm it;
   * lines still held then are counted as dropped. Disconnects.
   */
  async close(lingerMs = 10_000): Promise<LogSenderStats> {
    this.#closing = true;
    this.#scheduleFlush();
    if (this.heldBytes > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((resolve) => this.#idleWaiters.push(resolve)),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, lingerMs))),
      ]);
      clearTimeout(timer);
    }
    clearTimeout(this.#retryTimer);
    const unsentLines = this.#pendingLines + this.#unconfirmed.reduce((sum, batch) => sum + batch.lines, 0);
    if (unsentLines > 0) {
      this.stats.linesDropped += unsentLines;
      this.#unreportedDrops.lines += unsentLines;
      this.#unreportedDrops.bytes += this.heldBytes;
      this.#log.error({ lines: unsentLines, lingerMs }, 'exiting with lines the daemon never confirmed');
    }
    this.#reportDrops();
    const session = this.#session;
    this.#session = null;
    await session?.disconnect();
    return this.stats;
  }

  #reportDrops(): void {
    if (this.#unreportedDrops.lines === 0) return;
    this.#log.warn(
      { droppedLines: this.#unreportedDrops.lines, droppedBytes: this.#unreportedDrops.bytes, totalDroppedLines: this.stats.linesDropped },
      'dropped lines: the buffer bound was passed',
    );
    this.#unreportedDrops = { lines: 0, bytes: 0 };
  }

  async #connect(): Promise<void> {
    if (this.#closing && this.heldBytes === 0) return;
    let session: Session;
    try {
      session = await connect({ daemon: this.#options.daemon, unixSocketDir: this.#options.unixSocketDir });
    } catch (error) {
      this.#retryMs = nextRetryMs(this.#retryMs);
      if (!this.#outageReported) {
        this.#outageReported = true;
        this.#log.warn({ daemon: this.#options.daemon, error: errorText(error), heldBytes: this.heldBytes }, 'cannot reach the daemon; holding lines and retrying');
      }
      this.#retryTimer = setTimeout(() => void this.#connect(), this.#retryMs);
      return;
    }
    this.#retryMs = 0;
    this.#outageReported = false;
    this.#session = session;
    this.#sentCount = 0;
    this.#log.info({ privateGroup: session.privateGroup, senderId: this.senderId, heldBytes: this.heldBytes }, this.#everConnected ? 'reconnected' : 'connected');
    this.#everConnected = true;
    session.on('message', (message) => this.#onMessage(message));
    session.on('membership', (message) => this.#onMembership(message));
    session.on('close', (error) => this.#onClose(session, error));
    if (this.#options.collectors > 0) {
      session.join(presenceGroup(this.#options.group));
    } else {
      this.#setReady(true);
    }
  }

  #onClose(session: Session, error: Error | undefined): void {
    if (this.#session !== session) return;
    this.#session = null;
    this.#ready = false;
    const unconfirmedLines = this.#unconfirmed.reduce((sum, batch) => sum + batch.lines, 0);
    this.#log.warn({ error: error?.message, unconfirmedLines, pendingLines: this.#pendingLines }, 'lost the daemon; holding lines and reconnecting');
    this.#retryTimer = setTimeout(() => void this.#connect(), nextRetryMs(0));
  }

  #onMembership(message: MembershipMessage): void {
    if (message.group !== presenceGroup(this.#options.group) || message.transitional) return;
    const collectors = message.members.filter(isCollectorMember).length;
    const enough = collectors >= this.#options.collectors;
    if (enough !== this.#ready) {
      this.#log.info({ collectors, needed: this.#options.collectors }, enough ? 'collectors present: sending' : 'too few collectors: holding lines');
    }
    this.#setReady(enough);
  }

  #setReady(ready: boolean): void {
    this.#ready = ready;
    if (ready) this.#scheduleFlush();
  }

  #onMessage(message: DataMessage): void {
    if (message.messType !== CONFIRM_MESS_TYPE || message.sender !== this.#session?.privateGroup) return;
    const confirmedSeq = Number(Buffer.from(message.data).toString('latin1'));
    let count = 0;
    while (count < this.#unconfirmed.length && this.#unconfirmed[count].seq <= confirmedSeq) {
      const batch = this.#unconfirmed[count++];
      this.stats.linesConfirmed += batch.lines;
      this.#unconfirmedBytes -= batch.data.length;
    }
    this.#unconfirmed.splice(0, count);
    this.#sentCount = Math.max(0, this.#sentCount - count);
    this.#reportDrops(); // room again: say now what the full buffer cost
    this.#wakeIfIdle();
  }

  #wakeIfIdle(): void {
    if (this.#roomWaiters.length > 0) {
      const waiting = this.#roomWaiters;
      this.#roomWaiters = waiting.filter((waiter) => this.heldBytes > waiter.heldBytes);
      for (const waiter of waiting) if (this.heldBytes <= waiter.heldBytes) waiter.wake();
    }
    if (this.heldBytes > 0 || this.#idleWaiters.length === 0) return;
    for (const wake of this.#idleWaiters.splice(0)) wake();
  }

  #scheduleFlush(): void {
    if (this.#flushQueued) return;
    this.#flushQueued = true;
    setImmediate(() => {
      this.#flushQueued = false;
      void this.#flush();
    });
  }

  /** Packs pending lines into batches and sends every batch this session has not sent, then a CONFIRM note. */
  async #flush(): Promise<void> {
    if (this.#flushing) return;
    this.#flushing = true;
    try {
      while (this.#ready && this.#session !== null) {
        const session = this.#session;
        this.#packPending();
        if (this.#sentCount >= this.#unconfirmed.length) break;
        let roomy = true;
        while (roomy && this.#sentCount < this.#unconfirmed.length) {
          const batch = this.#unconfirmed[this.#sentCount++];
          if (batch.sent) this.stats.batchesResent++;
          batch.sent = true;
          roomy = session.multicast(this.#options.group, batch.data, {
            service: this.#options.service,
            messType: this.#options.plain ? 0 : SEQUENCED_MESS_TYPE,
          });
        }
        const lastSent = this.#unconfirmed[this.#sentCount - 1].seq;
        session.multicast(session.privateGroup, String(lastSent), { service: this.#options.service, messType: CONFIRM_MESS_TYPE });
        if (!roomy) await session.drained();
      }
    } catch (error) {
      // The session failed under us; its close event brings the reconnect.
      this.#log.warn({ error: errorText(error) }, 'send failed');
    } finally {
      this.#flushing = false;
    }
  }

  /** Cuts the pending lines into batches of at most BATCH_BYTES_MAX bytes, at line ends. */
  #packPending(): void {
    if (this.#pendingBytes === 0) return;
    const bytes = this.#pending.length === 1 ? this.#pending[0] : Buffer.concat(this.#pending, this.#pendingBytes);
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#pendingLines = 0;
    if (this.#options.plain) {
      for (let start = 0; start < bytes.length; ) {
        const end = bytes.indexOf(NEWLINE, start);
        this.#addBatch(Buffer.from(bytes.subarray(start, end)), 1);
        start = end + 1;
      }
      return;
    }
    for (let start = 0; start < bytes.length; ) {
      const header = batchHeader(this.senderId, this.#nextSeq);
      const room = BATCH_BYTES_MAX - header.length;
      const end = bytes.length - start <= room ? bytes.length : bytes.lastIndexOf(NEWLINE, start + room - 1) + 1;
      const lines = bytes.subarray(start, end);
      this.#addBatch(Buffer.concat([header, lines]), countLines(lines));
      start = end;
    }
  }

  #addBatch(data: Buffer, lines: number): void {
    this.#unconfirmed.push({ seq: this.#nextSeq++, data, lines, sent: false });
    this.#unconfirmedBytes += data.length;
  }
}
