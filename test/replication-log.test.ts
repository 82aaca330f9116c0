/**
 * The engine's file log (src/apps/replication/log.ts): records read back after a reopen, a torn
 * last record cut off, and a checkpoint that replaces the log.
 */
import { appendFileSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ActionLog, encodeRecord } from '../src/apps/replication/log.js';
import { recover, type LogRecord } from '../src/apps/replication/records.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function scratch(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tspread-replication-log-'));
  dirs.push(dir);
  return dir;
}

const green = (position: number, seq: number): LogRecord => ({ kind: 'green', action: { origin: 'r1.a', seq, position, body: Buffer.from(`body ${seq}`) } });

describe('ActionLog', () => {
  it('reads back what it appended and cuts a torn last record off', async () => {
    const dir = scratch();
    const { log } = ActionLog.open(dir, { index: 0, members: ['r1', 'r2'] });
    const records: LogRecord[] = [
      green(1, 1),
      { kind: 'red', action: { origin: 'r2.b', seq: 4, body: Buffer.from('red') } },
      { kind: 'yellow', prim: 3, action: { origin: 'r2.b', seq: 5, body: Buffer.from('yellow') } },
      { kind: 'meta', lastPrimary: { index: 3, members: ['r1', 'r2'] }, attempts: [{ index: 4, members: ['r1'] }] },
      green(2, 2),
    ];
    await log.append(records.map(encodeRecord));
    log.close();
    const whole = encodeRecord(green(3, 3));
    appendFileSync(join(dir, 'actions-0.log'), whole.subarray(0, whole.length - 3));

    const { log: reopened, loaded } = ActionLog.open(dir, null);
    expect(loaded.records).toEqual(records);
    const state = recover(loaded.checkpoint, loaded.records);
    expect(state.greens.map((action) => action.position)).toEqual([1, 2]);
    expect([...state.pending.keys()]).toEqual(['r2.b:4', 'r2.b:5']);
    expect(state.yellow).toEqual({ prim: 3, keys: ['r2.b:5'] });
    expect(state.lastPrimary).toEqual({ index: 3, members: ['r1', 'r2'] });
    // Appends go on after the intact records.
    await reopened.append([encodeRecord(green(3, 3))]);
    reopened.close();
    expect(ActionLog.open(dir, null).loaded.records).toHaveLength(6);
  });

  it('replaces the log by a checkpoint', async () => {
    const dir = scratch();
    const { log } = ActionLog.open(dir, null);
    await log.append([green(1, 1), green(2, 2)].map(encodeRecord));
    const pending = [{ origin: 'r2.b', seq: 9, body: Buffer.from('held') }];
    log.writeCheckpoint({ position: 2, greenIds: { 'r1.a': [2, []] }, lastPrimary: { index: 1, members: ['r1'] }, attempts: [], pending, yellow: null }, Buffer.from('machine'));
    await log.append([encodeRecord(green(3, 3))]);
    log.close();
    expect(readdirSync(dir).sort()).toEqual(['actions-2.log', 'checkpoint.bin']);
    const { log: reopened, loaded } = ActionLog.open(dir, null);
    reopened.close();
    expect(loaded.snapshot.toString()).toBe('machine');
    expect(loaded.checkpoint.pending).toEqual(pending);
    const state = recover(loaded.checkpoint, loaded.records);
    expect(state.greens.map((action) => action.position)).toEqual([3]);
    expect(state.greenIds.has({ origin: 'r1.a', seq: 2 })).toBe(true);
  });
});
