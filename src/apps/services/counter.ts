/** The example service: a replicated counter (`tspread svc counter`, docs/services.md). */
import type { Handlers } from './service-core.js';

export interface CounterState {
  value: number;
}

export const counterHandlers: Handlers<CounterState> = {
  /** Adds `by` (default 1) and returns the new value. */
  increment(state, args) {
    const by = typeof args === 'object' && args !== null && 'by' in args ? (args as { by: unknown }).by : 1;
    if (typeof by !== 'number' || !Number.isSafeInteger(by)) throw new TypeError('increment: "by" must be an integer');
    state.value += by;
    return state.value;
  },
  get(state) {
    return state.value;
  },
  /** Returns its arguments: round trips of a given size, for benchmarks. */
  echo(_state, args) {
    return args;
  },
};

export const counterInitialState = (): CounterState => ({ value: 0 });
