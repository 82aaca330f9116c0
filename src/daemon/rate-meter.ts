// Pure: the caller passes the clock reading, so the daemon core can keep it.
/** Token rotations per second over a sliding window, from the ring's cumulative `tokenRounds`. */
export class RateMeter {
  #samples: Array<{ atMs: number; value: number }> = [];
  constructor(private readonly windowMs = 5000) {}

  /** Records the counter's value at `nowMs` and returns the rate over the window (0 until two samples). */
  sample(value: number, nowMs: number): number {
    const samples = this.#samples;
    if (samples.length === 0 || nowMs > samples[samples.length - 1].atMs) samples.push({ atMs: nowMs, value });
    while (samples.length > 2 && samples[1].atMs <= nowMs - this.windowMs) samples.shift();
    if (samples.length > 64) samples.splice(1, samples.length - 64);
    const first = samples[0];
    const last = samples[samples.length - 1];
    if (last.atMs === first.atMs) return 0;
    return Math.max(0, ((last.value - first.value) * 1000) / (last.atMs - first.atMs));
  }
}
