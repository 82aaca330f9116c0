/**
 * A replica's watch on its own health, for proactive recovery: heap in use,
 * event-loop delay (perf_hooks' histogram, p99 over the last interval) and an
 * optional hook of the service's own. Past a threshold it reports once, so the
 * replica can hand over before it fails rather than after.
 */
import { EventEmitter } from 'node:events';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';

export interface HealthThresholds {
  /** Heap in use (bytes) above which the replica should leave. */
  maxHeapBytes?: number;
  /** Event-loop delay p99 (ms) above which the replica should leave. */
  maxEventLoopDelayMs?: number;
  /** The service's own check: a reason to leave, or null. */
  check?: () => string | null;
}

export interface HealthSample {
  heapBytes: number;
  eventLoopDelayMs: number;
}

/** Why the sample is past a threshold, or null when it is healthy. Pure, for tests. */
export function assessHealth(sample: HealthSample, thresholds: HealthThresholds): string | null {
  if (thresholds.maxHeapBytes !== undefined && sample.heapBytes > thresholds.maxHeapBytes) {
    return `heap in use ${Math.round(sample.heapBytes / 1048576)} MiB is over ${Math.round(thresholds.maxHeapBytes / 1048576)} MiB`;
  }
  if (thresholds.maxEventLoopDelayMs !== undefined && sample.eventLoopDelayMs > thresholds.maxEventLoopDelayMs) {
    return `event-loop delay p99 ${sample.eventLoopDelayMs.toFixed(1)} ms is over ${thresholds.maxEventLoopDelayMs} ms`;
  }
  return thresholds.check?.() ?? null;
}

export class HealthMonitor extends EventEmitter<{ unhealthy: [string] }> {
  readonly #thresholds: HealthThresholds;
  readonly #intervalMs: number;
  #histogram: IntervalHistogram | null = null;
  #timer: NodeJS.Timeout | null = null;

  constructor(thresholds: HealthThresholds, intervalMs = 1000) {
    super();
    this.#thresholds = thresholds;
    this.#intervalMs = intervalMs;
  }

  start(): void {
    if (this.#timer !== null) return;
    this.#histogram = monitorEventLoopDelay({ resolution: 10 });
    this.#histogram.enable();
    this.#timer = setInterval(() => this.#check(), this.#intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    this.#histogram?.disable();
    this.#histogram = null;
  }

  sample(): HealthSample {
    const delayNs = this.#histogram?.percentile(99) ?? 0;
    return { heapBytes: process.memoryUsage().heapUsed, eventLoopDelayMs: delayNs / 1e6 };
  }

  #check(): void {
    const reason = assessHealth(this.sample(), this.#thresholds);
    this.#histogram?.reset();
    if (reason === null) return;
    this.stop();
    this.emit('unhealthy', reason);
  }
}
