// `tspread check` (Nagios plugin): status line, performance data and exit codes, against an
// in-memory session; the real-daemon run is in management-process.test.ts.
import { EventEmitter } from 'node:events';
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { runCheck, type ProbeSession } from '../src/management/check.js';
import type { DataMessage, MembershipMessage, Service } from '../src/client/messages.js';
import { sampleSnapshot } from './management-fixtures.js';

/** Delivers joins at once and the session's own messages after `delayMs`. */
class FakeSession extends EventEmitter implements ProbeSession {
  readonly privateGroup = '#probe#d1';
  readonly joined: string[] = [];
  disconnected = false;
  constructor(private readonly delayMs: number | null) {
    super();
  }
  join(group: string): void {
    this.joined.push(group);
    const membership = { kind: 'membership', group, cause: 'join', transitional: false, members: [this.privateGroup] } as unknown as MembershipMessage;
    setImmediate(() => this.emit('membership', membership));
  }
  leave(): void {}
  multicast(group: string, data: Uint8Array, options?: { service?: Service }): boolean {
    const message = { kind: 'data', service: options?.service ?? 'agreed', sender: this.privateGroup, groups: [group], data } as unknown as DataMessage;
    if (this.delayMs !== null) setTimeout(() => this.emit('message', message), this.delayMs);
    return true;
  }
  async disconnect(): Promise<void> {
    this.disconnected = true;
  }
}

const base = { daemon: '4803@127.0.0.1', warningMs: 100, criticalMs: 500, timeoutSeconds: 2 };

describe('tspread check', () => {
  it('is OK with a fast self-delivery and prints Nagios performance data', async () => {
    const session = new FakeSession(0);
    const result = await runCheck({ ...base, connect: async () => session });
    expect(result.status).toBe(0);
    expect(result.line).toMatch(/^SPREAD OK - self-delivery [\d.]+ ms at 4803@127\.0\.0\.1 \| latency=[\d.]+ms;100;500;0 connect=[\d.]+ms;;;0 join=[\d.]+ms;;;0$/);
    expect(session.joined[0]).toMatch(/^tspread-check-[0-9a-f]{12}$/);
    expect(session.disconnected).toBe(true);
  });
  it('warns and goes critical on the thresholds', async () => {
    const warning = await runCheck({ ...base, warningMs: 20, criticalMs: 1000, connect: async () => new FakeSession(60) });
    expect(warning.status).toBe(1);
    expect(warning.line).toMatch(/^SPREAD WARNING - self-delivery/);
    const critical = await runCheck({ ...base, warningMs: 10, criticalMs: 20, connect: async () => new FakeSession(60) });
    expect(critical.status).toBe(2);
    expect(critical.line).toMatch(/^SPREAD CRITICAL - self-delivery .*latency=[\d.]+ms;10;20;0/);
  });
  it('is CRITICAL when nothing comes back before the timeout, or the daemon is down', async () => {
    const lost = await runCheck({ ...base, timeoutSeconds: 0.2, connect: async () => new FakeSession(null) });
    expect(lost.status).toBe(2);
    expect(lost.line).toMatch(/^SPREAD CRITICAL - self-delivery failed at 4803@127\.0\.0\.1: no self-delivery within the timeout \| connect=/);
    const down = await runCheck({
      ...base,
      connect: async () => {
        throw new Error('could not connect to 127.0.0.1:4803: ECONNREFUSED');
      },
    });
    expect(down).toMatchObject({ status: 2, line: 'SPREAD CRITICAL - connect failed at 4803@127.0.0.1: could not connect to 127.0.0.1:4803: ECONNREFUSED' });
  });
  it('is UNKNOWN on inconsistent thresholds', async () => {
    const result = await runCheck({ ...base, warningMs: 600, criticalMs: 500, connect: async () => new FakeSession(0) });
    expect(result).toMatchObject({ status: 3, line: 'SPREAD UNKNOWN - warning 600 ms is above critical 500 ms' });
  });
  it('adds the daemon\'s counters from /status', async () => {
    const result = await runCheck({
      ...base,
      statusUrl: 'http://127.0.0.1:1/status',
      connect: async () => new FakeSession(0),
      fetchStatus: async () => sampleSnapshot(),
    });
    expect(result.line).toContain(', ring of 2 (OP) |');
    expect(result.line).toContain(' ring_members=2;;;0 sessions=3;;;0 groups=2;;;0 messages_delivered=47c bytes_delivered=920c retransmissions=7c token_rounds_per_second=5.75;;;0');
  });
});

describe('tspread check command line', () => {
  const cli = (...args: string[]) =>
    spawnSync(process.execPath, ['dist/src/tools/cli.js', 'check', ...args], { encoding: 'utf8', timeout: 20_000 });

  it('exits 3 with one UNKNOWN line on a usage error, 2 when no daemon listens', () => {
    const usage = cli('-w', 'abc');
    expect(usage.status).toBe(3);
    expect(usage.stdout).toMatch(/^SPREAD UNKNOWN - option '-w, --warning <ms>' argument 'abc' is invalid/);
    const down = cli('-s', '25099@127.0.0.1', '-t', '2');
    expect(down.status).toBe(2);
    expect(down.stdout).toMatch(/^SPREAD CRITICAL - connect failed at 25099@127\.0\.0\.1/);
  });
});
