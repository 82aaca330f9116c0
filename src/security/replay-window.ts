/**
 * Per-sender sliding window over datagram counters (RFC 4303 §3.4.3 style): a counter is
 * accepted once, and only if it is above the highest seen minus the window. Counters are
 * integers below 2^53 (ring-seal.ts starts them at the wall clock in microseconds).
 */

/** Counters remembered behind the highest: far more than the ring reorders (token vs data socket). */
export const REPLAY_WINDOW_COUNTERS = 8192;
const WORDS = REPLAY_WINDOW_COUNTERS / 32;

export class ReplayWindow {
  private highest = -1;
  /** Bit (c mod W) is set when counter c (within the window) was seen. */
  private readonly seen = new Uint32Array(WORDS);

  /** True when `counter` is new (and records it); false for a replay or a counter too old. */
  accept(counter: number): boolean {
    if (counter > this.highest) {
      const advance = this.highest < 0 ? REPLAY_WINDOW_COUNTERS : counter - this.highest;
      if (advance >= REPLAY_WINDOW_COUNTERS) this.seen.fill(0);
      else for (let c = this.highest + 1; c < counter; c++) this.clear(c);
      this.highest = counter;
      this.set(counter);
      return true;
    }
    if (this.highest - counter >= REPLAY_WINDOW_COUNTERS) return false;
    if (this.has(counter)) return false;
    this.set(counter);
    return true;
  }

  /** Whether `counter` would be accepted, without recording it. */
  wouldAccept(counter: number): boolean {
    if (counter > this.highest) return true;
    return this.highest - counter < REPLAY_WINDOW_COUNTERS && !this.has(counter);
  }

  private bit(counter: number): [number, number] {
    const slot = counter % REPLAY_WINDOW_COUNTERS;
    return [slot >>> 5, 1 << (slot & 31)];
  }

  private has(counter: number): boolean {
    const [word, mask] = this.bit(counter);
    return (this.seen[word] & mask) !== 0;
  }

  private set(counter: number): void {
    const [word, mask] = this.bit(counter);
    this.seen[word] |= mask;
  }

  private clear(counter: number): void {
    const [word, mask] = this.bit(counter);
    this.seen[word] &= ~mask;
  }
}
