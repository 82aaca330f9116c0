/**
 * Per-session output queue and the slow-reader rule (§6.3), independent of sockets.
 *
 * A message goes straight to the sink while the sink accepts more (Node's
 * `socket.write` returning true); once it returns false the session is blocked and
 * further messages wait here until `drained()` (the socket's 'drain' event). What the
 * sink has taken is the kernel's and Node's business and is not counted — the same
 * line Spread draws, where the kernel buffers absorb data before queuing starts.
 *
 * Cut rules:
 *   - messages: Spread's check, before every delivery: "messages already queued ≥
 *     MaxSessionMessages" (so 0 cuts on the first delivery attempt, §8.4);
 *   - bytes (tspread): a message that would take the queue past `bytesMax`.
 * Backlog marks (tspread, see server.ts): `backlogged` turns on at a quarter of either
 * bound and off at an eighth; while a backlogged session keeps making progress the daemon
 * stops reading clients, so it is not cut merely for being slower than the senders.
 */

export interface OutputSink {
  /** Same contract as socket.write: false = stop writing until drained(). */
  write(bytes: Uint8Array): boolean;
}

export interface OutputLimits {
  messagesMax: number;
  bytesMax: number;
}

export class SessionOutput {
  private readonly sink: OutputSink;
  private readonly limits: OutputLimits;
  private queue: Uint8Array[] = [];
  private head = 0;
  private bytes = 0;
  private blocked = false;
  private readonly highMessages: number;
  private readonly lowMessages: number;
  private readonly highBytes: number;
  private readonly lowBytes: number;
  backlogged = false;
  /** Last time the sink made progress (a drain); meaningful while backlogged. */
  lastProgressMs = 0;

  constructor(sink: OutputSink, limits: OutputLimits) {
    this.sink = sink;
    this.limits = limits;
    this.highMessages = Math.max(1, Math.floor(limits.messagesMax / 4));
    this.lowMessages = Math.floor(limits.messagesMax / 8);
    this.highBytes = Math.max(1, Math.floor(limits.bytesMax / 4));
    this.lowBytes = Math.floor(limits.bytesMax / 8);
  }

  get queuedMessages(): number {
    return this.queue.length - this.head;
  }

  get queuedBytes(): number {
    return this.bytes;
  }

  /** Deliver one message. Returns null, or why the session must be cut. */
  enqueue(message: Uint8Array, nowMs: number): string | null {
    const queued = this.queue.length - this.head;
    if (queued >= this.limits.messagesMax) {
      return `${queued} messages queued (MaxSessionMessages ${this.limits.messagesMax})`;
    }
    if (!this.blocked) {
      if (!this.sink.write(message)) this.blocked = true;
      return null;
    }
    if (this.bytes + message.length > this.limits.bytesMax) {
      return `${this.bytes} bytes queued, ${message.length} more would pass MaxSessionBytes ${this.limits.bytesMax}`;
    }
    this.queue.push(message);
    this.bytes += message.length;
    if (!this.backlogged && (queued + 1 >= this.highMessages || this.bytes >= this.highBytes)) {
      this.backlogged = true;
      this.lastProgressMs = nowMs;
    }
    return null;
  }

  /** The sink drained: write queued messages until it pushes back again. */
  drained(nowMs: number): void {
    this.blocked = false;
    this.lastProgressMs = nowMs;
    while (this.head < this.queue.length && !this.blocked) {
      const message = this.queue[this.head];
      this.queue[this.head] = EMPTY;
      this.head += 1;
      this.bytes -= message.length;
      if (!this.sink.write(message)) this.blocked = true;
    }
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    if (this.backlogged && this.queuedMessages <= this.lowMessages && this.bytes <= this.lowBytes) this.backlogged = false;
  }

  /** True when backlogged without progress (a drain) for `stallMs`: it no longer holds senders back. */
  stalled(nowMs: number, stallMs: number): boolean {
    return this.backlogged && nowMs - this.lastProgressMs >= stallMs;
  }

  discard(): void {
    this.queue = [];
    this.head = 0;
    this.bytes = 0;
    this.backlogged = false;
    this.blocked = true;
  }
}

const EMPTY = new Uint8Array(0);
