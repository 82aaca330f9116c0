/**
 * Per-session output and the slow-reader rule (§6.3), independent of sockets.
 *
 * Deliveries of one event-loop turn are collected (`push`) and handed to the kernel at the
 * end of the turn in one vectored write (`flush`). Only what the kernel did not take counts
 * as queued: the messages still waiting here plus the unwritten tail of the write in flight
 * (the sink reports its unwritten bytes). Node's own stream buffer never enters the count,
 * so a burst that the kernel absorbs is not a backlog, whatever its size.
 *
 * While a write is in flight, new deliveries wait here; when the kernel has taken the whole
 * write (`written`), everything waiting goes out as the next one.
 *
 * Cut rules (tspread; Spread cuts at "MaxSessionMessages already queued" on the next
 * delivery, whatever the reader is doing):
 *   - messages: MaxSessionMessages or more queued and no progress (the kernel took none of
 *     this session's bytes) for `stallMs`. A reader that keeps reading is not cut for a
 *     burst the ring handed it; one that stops is cut once it is that far behind.
 *   - bytes: a queue past MaxSessionBytes is cut at once, reading or not: the daemon's
 *     memory bound for one session, whatever happens.
 * Backlog marks (see server.ts): `backlogged` turns on at a quarter of either bound and off
 * at an eighth; while a backlogged session keeps making progress (within HOLD_PROGRESS_MS)
 * the daemon stops reading its own clients, so a slower reader paces local senders instead of
 * being buried; one that stops reading holds nobody back for longer than that.
 */

/** A backlogged session that made no progress for this long stops holding senders back. */
const HOLD_PROGRESS_MS = 250;

export interface OutputSink {
  /** Hands `chunks` to the kernel as one vectored write; `written` runs once all are taken. */
  writev(chunks: Uint8Array[], written: () => void): void;
  /** Bytes handed over that the kernel has not taken yet. */
  unwrittenBytes(): number;
}

export interface OutputLimits {
  messagesMax: number;
  bytesMax: number;
  /** No progress for this long while MaxSessionMessages are queued: cut. */
  stallMs: number;
}

export class SessionOutput {
  private readonly sink: OutputSink;
  private readonly limits: OutputLimits;
  /** Delivered, not yet handed to the sink. */
  private waiting: Uint8Array[] = [];
  private waitingBytes = 0;
  /** The write in flight: end offset of each message in it, and its size. */
  private batchEnds: number[] = [];
  private batchBytes = 0;
  private writing = false;
  /** Unwritten bytes of the batch at the last look: less now means progress. */
  private lastUnwritten = 0;
  private readonly highMessages: number;
  private readonly lowMessages: number;
  private readonly highBytes: number;
  private readonly lowBytes: number;
  backlogged = false;
  /** Last time the kernel took bytes of this session (or its queue was empty). */
  lastProgressMs: number;

  private discarded = false;
  private readonly now: () => number;
  /** Called after each completed write (the owner re-checks its backlog). */
  private readonly written: (() => void) | undefined;

  constructor(sink: OutputSink, limits: OutputLimits, now: () => number, written?: () => void) {
    this.sink = sink;
    this.limits = limits;
    this.now = now;
    this.written = written;
    this.lastProgressMs = now();
    this.highMessages = Math.max(1, Math.floor(limits.messagesMax / 4));
    this.lowMessages = Math.floor(limits.messagesMax / 8);
    this.highBytes = Math.max(1, Math.floor(limits.bytesMax / 4));
    this.lowBytes = Math.floor(limits.bytesMax / 8);
  }

  /** Messages the kernel has not taken: waiting ones plus the in-flight write's unwritten tail. */
  get queuedMessages(): number {
    return this.waiting.length + this.unwrittenMessages(this.writing ? this.sink.unwrittenBytes() : 0);
  }

  /** Deliver one message (it leaves at the next flush). Returns null, or why the session must be cut. */
  push(message: Uint8Array): string | null {
    const unwritten = this.writing ? this.sink.unwrittenBytes() : 0;
    if (this.waitingBytes + unwritten + message.length > this.limits.bytesMax) {
      return `${this.waitingBytes + unwritten} bytes queued, ${message.length} more would pass MaxSessionBytes ${this.limits.bytesMax}`;
    }
    this.waiting.push(message);
    this.waitingBytes += message.length;
    return null;
  }

  /** End of a turn: hand what waits to the kernel unless a write is in flight, then apply the rules. */
  flush(nowMs: number): string | null {
    if (!this.writing && !this.discarded && this.waiting.length > 0) this.handOver();
    return this.check(nowMs);
  }

  /**
   * Re-evaluate progress, the backlog marks and the cut rules (at every flush and on the
   * server's stall timer). Returns null, or why the session must be cut.
   */
  check(nowMs: number): string | null {
    const unwritten = this.writing ? this.sink.unwrittenBytes() : 0;
    if (unwritten < this.lastUnwritten) this.lastProgressMs = nowMs;
    this.lastUnwritten = unwritten;
    const messages = this.waiting.length + this.unwrittenMessages(unwritten);
    const bytes = this.waitingBytes + unwritten;
    if (messages === 0) this.lastProgressMs = nowMs;
    if (!this.backlogged && (messages >= this.highMessages || bytes >= this.highBytes)) this.backlogged = true;
    else if (this.backlogged && messages <= this.lowMessages && bytes <= this.lowBytes) this.backlogged = false;
    if (messages >= this.limits.messagesMax && this.stalled(nowMs)) {
      return `${messages} messages queued (MaxSessionMessages ${this.limits.messagesMax}), no progress for ${Math.round(nowMs - this.lastProgressMs)} ms`;
    }
    return null;
  }

  /** True when backlogged without progress for `stallMs`: MaxSessionMessages now cuts it. */
  stalled(nowMs: number): boolean {
    return this.backlogged && nowMs - this.lastProgressMs >= this.limits.stallMs;
  }

  /**
   * True while backlogged and still reading (progress within HOLD_PROGRESS_MS): the daemon holds
   * its senders back for it. A reader that stops lets them go long before it is cut.
   */
  holdsSenders(nowMs: number): boolean {
    return this.backlogged && nowMs - this.lastProgressMs < Math.min(HOLD_PROGRESS_MS, this.limits.stallMs);
  }

  /** The session is gone: drop what waits and hand nothing more over. */
  discard(): void {
    this.discarded = true;
    this.waiting = [];
    this.waitingBytes = 0;
    this.backlogged = false;
  }

  private handOver(): void {
    const chunks = this.waiting;
    const ends = new Array<number>(chunks.length);
    let end = 0;
    for (let i = 0; i < chunks.length; i++) ends[i] = end += chunks[i].length;
    this.waiting = [];
    this.waitingBytes = 0;
    this.batchEnds = ends;
    this.batchBytes = end;
    this.writing = true;
    this.lastUnwritten = end;
    this.sink.writev(chunks, this.onWritten);
  }

  /** The kernel took the whole write: progress; what waited goes out now. */
  private readonly onWritten = (): void => {
    if (this.discarded) return;
    this.writing = false;
    this.batchEnds = [];
    this.batchBytes = 0;
    this.lastUnwritten = 0;
    this.lastProgressMs = this.now();
    if (this.waiting.length > 0) this.handOver();
    this.written?.();
  };

  /** Messages of the in-flight write whose bytes are not all taken. */
  private unwrittenMessages(unwritten: number): number {
    if (unwritten <= 0) return 0;
    const accepted = this.batchBytes - unwritten;
    const ends = this.batchEnds;
    // First message ending after the accepted prefix.
    let lo = 0;
    let hi = ends.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (ends[mid] <= accepted) lo = mid + 1;
      else hi = mid;
    }
    return ends.length - lo;
  }
}
