/**
 * The daemon's ring identity file (src/daemon/ring-identity.ts): a count of the daemon's lives
 * and the highest ring time it formed, kept across restarts; and a real daemon restarted at
 * once, which must not come back with a ring id it used before.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startDaemonProcess } from '../src/daemon/daemon.js';
import { RingIdentityFile, ringIdentityPath } from '../src/daemon/ring-identity.js';
import { soloConfig } from './helpers/daemon.js';

const PORT = 24_871;

function scratch(): string {
  return mkdtempSync(join(tmpdir(), 'tspread-identity-'));
}

describe('ring identity file', () => {
  it('a first start takes a random incarnation and floor 0; each later start one more, above the times kept', () => {
    const path = ringIdentityPath(scratch(), 'd1', 4803);
    const first = RingIdentityFile.open(path, () => 0.5);
    expect(first.ringTimeFloor).toBe(0);
    expect(first.incarnation).toBeGreaterThan(1);
    first.keep(1_718_000_005);
    first.keep(1_718_000_003); // lower: nothing to write
    expect(JSON.parse(readFileSync(path, 'utf8'))).toEqual({ incarnation: first.incarnation, ringTime: 1_718_000_005 });
    const second = RingIdentityFile.open(path, () => 0.5);
    expect(second.incarnation).toBe(first.incarnation + 1);
    expect(second.ringTimeFloor).toBe(1_718_000_005);
  });

  it('the incarnation wraps from 2^32 − 1 to 1', () => {
    const path = ringIdentityPath(scratch(), 'd1', 4803);
    writeFileSync(path, JSON.stringify({ incarnation: 0xffffffff, ringTime: 9 }));
    expect(RingIdentityFile.open(path, Math.random)).toMatchObject({ incarnation: 1, ringTimeFloor: 9 });
  });

  it('refuses a file that is not one of ours, and ring times beyond an int32', () => {
    const path = ringIdentityPath(scratch(), 'd1', 4803);
    writeFileSync(path, 'hello');
    expect(() => RingIdentityFile.open(path, Math.random)).toThrow(/does not hold a ring identity/);
    writeFileSync(path, JSON.stringify({ incarnation: 3, ringTime: 0x80000000 }));
    expect(() => RingIdentityFile.open(path, Math.random)).toThrow(/does not hold a ring identity/);
  });
});

describe('a daemon restarted at once', () => {
  it('comes back with a new ring id each time, in the same second or not', async () => {
    const dir = scratch();
    const configPath = join(dir, 'spread.conf');
    writeFileSync(configPath, soloConfig(PORT));
    const silent = { info() {}, warn() {}, debug() {} };
    const times: number[] = [];
    for (let life = 0; life < 3; life++) {
      const daemon = await startDaemonProcess({ configPath, port: PORT, unixDir: dir, stateDir: dir, logger: silent, monitor: false });
      times.push(daemon.node.statusSnapshot(Date.now()).ring.membId.time);
      await daemon.stop();
    }
    expect(times[1]).toBeGreaterThan(times[0]);
    expect(times[2]).toBeGreaterThan(times[1]);
    const kept = JSON.parse(readFileSync(ringIdentityPath(dir, 'localhost', PORT), 'utf8'));
    expect(kept.ringTime).toBe(times[2]);
  });
});
