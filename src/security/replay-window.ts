/**
 * Per-sender sliding window over datagram counters (RFC 4303 §3.4.3 style): a counter is
 * accepted once, and only if it is above the highest seen minus the window. Counters are
 * integers below 2^53; ring-seal.ts makes them follow the sender's clock in microseconds, so
 * the window is about one second of the sender's time: far more than datagrams of one
 * sender are ever reordered (its token and data sockets are read in different turns).
 */

/** Counters remembered behind the highest: 2^20 µs, about a second (128 KiB of bits per sender). */
export const REPLAY_WINDOW_COUNTERS = 1 << 20;
const WORDS = REPLAY_WINDOW_COUNTERS / 32;

export class ReplayWindow {
  private highest = -1;
  /** Bit (c mod W) is set when counter c (within the window) was seen. */
  private readonly seen = new Uint32Array(WORDS);

  /** True when `counter` is new (and records it); false for a replay or a counter too old. */
  accept(counter: number): boolean {
    if (counter > this.highest) {
      if (this.highest < 0 || counter - this.highest >= REPLAY_WINDOW_COUNTERS) this.seen.fill(0);
      else this.clearBetween(this.highest + 1, counter);
      this.highest = counter;
      this.set(counter);
      return true;
    }
    if (!this.wouldAccept(counter)) return false;
    this.set(counter);
    return true;
  }

  /** Whether `counter` would be accepted, without recording it. */
  wouldAccept(counter: number): boolean {
    if (counter > this.highest) return true;
    if (this.highest - counter >= REPLAY_WINDOW_COUNTERS) return false;
    const slot = counter % REPLAY_WINDOW_COUNTERS;
    return (this.seen[slot >>> 5] & (1 << (slot & 31))) === 0;
  }

  /** Forgets counters in [from, to) (fewer than W of them): the slots they will reuse. */
  private clearBetween(from: number, to: number): void {
    let counter = from;
    while (counter < to) {
      const slot = counter % REPLAY_WINDOW_COUNTERS;
      if ((slot & 31) === 0 && to - counter >= 32) {
        // A whole word at a time: clock-driven counters jump by hundreds between datagrams.
        this.seen[slot >>> 5] = 0;
        counter += 32;
      } else {
        this.seen[slot >>> 5] &= ~(1 << (slot & 31));
        counter += 1;
      }
    }
  }

  private set(counter: number): void {
    const slot = counter % REPLAY_WINDOW_COUNTERS;
    this.seen[slot >>> 5] |= 1 << (slot & 31);
  }
}
