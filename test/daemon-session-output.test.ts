// The slow-reader rules of a session's output (src/daemon/session-output.ts) against a fake
// kernel: only what the kernel refuses counts, a reader that keeps reading is never cut for a
// burst, one that stops is cut after the stall time, the byte bound always holds.
import { describe, expect, it } from 'vitest';
import { type OutputSink, SessionOutput } from '../src/daemon/session-output.js';

/** A socket whose kernel buffer takes up to `room` bytes until the reader drains it. */
class FakeKernel implements OutputSink {
  room: number;
  unwritten = 0;
  writes = 0;
  private pending: (() => void) | null = null;

  constructor(room: number) {
    this.room = room;
  }

  writev(chunks: Uint8Array[], written: () => void): void {
    this.writes++;
    const bytes = chunks.reduce((sum, chunk) => sum + chunk.length, 0);
    const taken = Math.min(bytes, this.room);
    this.room -= taken;
    this.unwritten = bytes - taken;
    if (this.unwritten === 0) queueMicrotask(written);
    else this.pending = written;
  }

  unwrittenBytes(): number {
    return this.unwritten;
  }

  /** The reader reads `bytes`: the kernel takes more of the write in flight. */
  read(bytes: number): void {
    this.room += bytes;
    const taken = Math.min(this.unwritten, this.room);
    this.room -= taken;
    this.unwritten -= taken;
    if (this.unwritten === 0 && this.pending !== null) {
      const written = this.pending;
      this.pending = null;
      written();
    }
  }
}

const LIMITS = { messagesMax: 100, bytesMax: 1_000_000, stallMs: 2000 };
const message = (bytes = 1000) => new Uint8Array(bytes);

function deliver(output: SessionOutput, count: number, nowMs: number): string | null {
  for (let i = 0; i < count; i++) {
    const cut = output.push(message());
    if (cut !== null) return cut;
  }
  return output.flush(nowMs);
}

describe('session output', () => {
  it('a burst the kernel takes is not queued, however many messages it holds', () => {
    const kernel = new FakeKernel(10_000_000);
    let now = 0;
    const output = new SessionOutput(kernel, { ...LIMITS, bytesMax: 64 << 20 }, () => now);
    expect(deliver(output, 5000, now)).toBeNull();
    expect(kernel.writes).toBe(1); // one vectored write for the turn
    expect(output.queuedMessages).toBe(0);
    expect(output.backlogged).toBe(false);
  });

  it('counts only what the kernel refused, message by message', () => {
    const kernel = new FakeKernel(25_500);
    const output = new SessionOutput(kernel, LIMITS, () => 0);
    expect(deliver(output, 40, 0)).toBeNull();
    // 25 whole messages and half of one went in: 15 are still queued.
    expect(output.queuedMessages).toBe(15);
    expect(output.push(message())).toBeNull();
    expect(output.queuedMessages).toBe(16);
  });

  it('never cuts a reader that keeps reading, even far past MaxSessionMessages (the byte bound still holds)', async () => {
    const kernel = new FakeKernel(50_000);
    let now = 0;
    const output = new SessionOutput(kernel, { ...LIMITS, bytesMax: 64 << 20 }, () => now);
    for (let turn = 0; turn < 100; turn++) {
      now += 100;
      expect(deliver(output, 50, now)).toBeNull();
      kernel.read(30_000); // slower than the senders, but reading
      await Promise.resolve(); // the next event-loop turn: write callbacks run (as Node's do)
    }
    expect(output.queuedMessages).toBeGreaterThan(LIMITS.messagesMax);
    expect(output.holdsSenders(now)).toBe(true);
  });

  it('cuts a reader that stopped, once MaxSessionMessages wait and the stall time passed', async () => {
    const kernel = new FakeKernel(50_000);
    let now = 0;
    const output = new SessionOutput(kernel, LIMITS, () => now);
    expect(deliver(output, 200, now)).toBeNull();
    await Promise.resolve();
    now = 300;
    expect(output.check(now)).toBeNull();
    expect(output.holdsSenders(now)).toBe(false); // it stopped reading: nobody waits for it
    now = 1999;
    expect(deliver(output, 1, now)).toBeNull();
    now = 2000;
    expect(output.check(now)).toMatch(/^151 messages queued \(MaxSessionMessages 100\), no progress for 2000 ms$/);
  });

  it('the byte bound cuts at once, reading or not', () => {
    const kernel = new FakeKernel(0);
    const output = new SessionOutput(kernel, { ...LIMITS, bytesMax: 10_500 }, () => 0);
    for (let i = 0; i < 10; i++) expect(output.push(message())).toBeNull();
    expect(output.push(message())).toMatch(/10000 bytes queued, 1000 more would pass MaxSessionBytes 10500/);
  });

  it('hands what waited during a write over as the next write, in order', async () => {
    const kernel = new FakeKernel(1500);
    const seen: number[] = [];
    const recording: OutputSink = {
      writev: (chunks, written) => {
        for (const chunk of chunks) seen.push(chunk[0]);
        kernel.writev(chunks, written);
      },
      unwrittenBytes: () => kernel.unwrittenBytes(),
    };
    const output = new SessionOutput(recording, LIMITS, () => 0);
    for (let i = 0; i < 3; i++) output.push(new Uint8Array(1000).fill(i));
    output.flush(0);
    for (let i = 3; i < 6; i++) output.push(new Uint8Array(1000).fill(i));
    output.flush(0); // a write is in flight: these wait
    expect(seen).toEqual([0, 1, 2]);
    kernel.read(10_000);
    expect(seen).toEqual([0, 1, 2, 3, 4, 5]);
  });
});
