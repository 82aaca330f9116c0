/**
 * What a replica keeps durably, as values: log records appended as actions arrive, and the
 * checkpoint that replaces the log up to a position. `recover` rebuilds the engine's durable
 * state from them; the file log and the simulator's in-memory log both go through it.
 */
import { actionKey, GreenIds, type Action, type GreenAction } from './action.js';
import type { PrimaryRecord } from './voting.js';

export type LogRecord =
  | { kind: 'green'; action: GreenAction }
  | { kind: 'red'; action: Action }
  /** Delivered in the transitional configuration of primary `prim`: maybe green at others. */
  | { kind: 'yellow'; prim: number; action: Action }
  | { kind: 'meta'; lastPrimary: PrimaryRecord | null; attempts: PrimaryRecord[] };

export interface YellowRun {
  prim: number;
  keys: string[];
}

/** The engine's durable state at a position (the machine's snapshot travels beside it). */
export interface Checkpoint {
  position: number;
  greenIds: Record<string, [number, number[]]>;
  lastPrimary: PrimaryRecord | null;
  attempts: PrimaryRecord[];
  pending: Action[];
  yellow: YellowRun | null;
}

export interface DurableState {
  checkpoint: Checkpoint;
  /** Green actions after the checkpoint, in order. */
  greens: GreenAction[];
  greenIds: GreenIds;
  pending: Map<string, Action>;
  yellow: YellowRun | null;
  lastPrimary: PrimaryRecord | null;
  attempts: PrimaryRecord[];
}

export const emptyCheckpoint = (initial: PrimaryRecord | null = null): Checkpoint => ({
  position: 0,
  greenIds: {},
  lastPrimary: initial,
  attempts: [],
  pending: [],
  yellow: null,
});

/** Replays records over a checkpoint; greens it already covers are skipped, and a gap in positions ends the replay. */
export function recover(checkpoint: Checkpoint, records: Iterable<LogRecord>): DurableState {
  const greenIds = GreenIds.fromJSON(checkpoint.greenIds);
  const pending = new Map(checkpoint.pending.map((action) => [actionKey(action), action]));
  let yellow = checkpoint.yellow === null ? null : { prim: checkpoint.yellow.prim, keys: [...checkpoint.yellow.keys] };
  let lastPrimary = checkpoint.lastPrimary;
  let attempts = checkpoint.attempts;
  const greens: GreenAction[] = [];
  let position = checkpoint.position;
  for (const record of records) {
    if (record.kind === 'green') {
      if (record.action.position <= position) continue;
      if (record.action.position !== position + 1) break;
      position++;
      greens.push(record.action);
      greenIds.add(record.action);
      pending.delete(actionKey(record.action));
    } else if (record.kind === 'meta') {
      lastPrimary = record.lastPrimary;
      attempts = record.attempts;
    } else if (!greenIds.has(record.action)) {
      pending.set(actionKey(record.action), record.action);
      if (record.kind === 'yellow') {
        if (yellow === null || yellow.prim < record.prim) yellow = { prim: record.prim, keys: [] };
        if (yellow.prim === record.prim) yellow.keys.push(actionKey(record.action));
      }
    }
  }
  if (yellow !== null) yellow.keys = yellow.keys.filter((key) => pending.has(key));
  return { checkpoint, greens, greenIds, pending, yellow, lastPrimary, attempts };
}
