import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type ClientLog, type LogEntry, SERVICES, checkEvs, formatViolations } from '../src/checker/index.js';
import { type ModelConfig, type ModelOp, runReferenceModel } from '../src/checker/model.js';

const config: ModelConfig = { daemons: 3, clients: 6, groups: 3 };

const client = fc.integer({ min: 0, max: config.clients - 1 });
const group = fc.integer({ min: 0, max: config.groups - 1 });
const daemon = fc.integer({ min: 0, max: config.daemons - 1 });

const sendOp: fc.Arbitrary<ModelOp> = fc.record({
  op: fc.constant('send' as const),
  client,
  service: fc.constantFrom(...SERVICES),
  groups: fc.uniqueArray(group, { maxLength: 2 }),
  privateTo: fc.uniqueArray(client, { maxLength: 1 }),
  selfDiscard: fc.boolean(),
  late: fc.boolean(),
});

const joinOp: fc.Arbitrary<ModelOp> = fc.record({ op: fc.constant('join' as const), client, group });

const op: fc.Arbitrary<ModelOp> = fc.oneof(
  { weight: 3, arbitrary: joinOp },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('leave' as const), client, group }) },
  { weight: 6, arbitrary: sendOp },
  {
    weight: 1,
    arbitrary: fc.record(
      {
        op: fc.constant('partition' as const),
        daemons: fc.uniqueArray(daemon, { minLength: 1, maxLength: 2 }),
        joinDuring: fc.record({ client, group }),
      },
      { requiredKeys: ['op', 'daemons'] },
    ),
  },
  { weight: 1, arbitrary: fc.constant({ op: 'merge' as const }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('crash' as const), daemon }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('restart' as const), daemon }) },
);

/** Some joins first, so that most runs carry traffic; then anything. */
const ops: fc.Arbitrary<ModelOp[]> = fc
  .tuple(fc.array(joinOp, { minLength: 4, maxLength: 14 }), fc.array(op, { minLength: 30, maxLength: 150 }))
  .map(([joins, rest]) => [...joins, ...rest]);

/** Like `ops`, but every send is AGREED and never late: material for order mutations. */
const agreedOps = ops.map((script) =>
  script.map((step): ModelOp => (step.op === 'send' ? { ...step, service: 'AGREED', late: false } : step)),
);

describe('EVS checker against the reference model', () => {
  it('correct logs produce no violations', () => {
    fc.assert(
      fc.property(ops, (script) => {
        const logs = runReferenceModel(config, script);
        const violations = checkEvs(logs, { expectQuiescent: true });
        if (violations.length > 0) throw new Error(formatViolations(violations));
      }),
      { numRuns: 300 },
    );
  });

  it('swapping two AGREED deliveries that another client also saw is a total-order violation', () => {
    fc.assert(
      fc.property(agreedOps, fc.nat(), (script, pick) => {
        const logs = runReferenceModel(config, script);
        const candidates = swappable(logs);
        fc.pre(candidates.length > 0);
        const { session, index } = candidates[pick % candidates.length];
        const broken = structuredClone(logs);
        const entries = broken[session].entries;
        [entries[index], entries[index + 1]] = [entries[index + 1], entries[index]];
        const properties = checkEvs(broken).map((violation) => violation.property);
        expect(properties).toContain('total-order');
      }),
      { numRuns: 200 },
    );
  });

  it('duplicated deliveries, dropped self-deliveries and forged senders are reported', () => {
    fc.assert(
      fc.property(ops, fc.nat(), fc.constantFrom('duplicate', 'drop-own', 'forge'), (script, pick, mutation) => {
        const logs = runReferenceModel(config, script);
        const candidates: { session: number; index: number }[] = [];
        logs.forEach((log, session) => {
          const disconnected = log.entries.some((entry) => entry.type === 'disconnected');
          log.entries.forEach((entry, index) => {
            if (entry.type !== 'data') return;
            if (mutation === 'drop-own' && (entry.sender !== log.privateGroup || disconnected || entry.service === 'UNRELIABLE')) return;
            candidates.push({ session, index });
          });
        });
        fc.pre(candidates.length > 0);
        const { session, index } = candidates[pick % candidates.length];
        const broken = structuredClone(logs);
        const entries = broken[session].entries;
        const entry = entries[index] as Extract<LogEntry, { type: 'data' }>;
        const expected = { duplicate: 'no-duplication', 'drop-own': 'self-delivery', forge: 'no-creation' }[mutation];
        if (mutation === 'duplicate') entries.splice(index + 1, 0, { ...entry });
        else if (mutation === 'drop-own') entries.splice(index, 1);
        else entries[index] = { ...entry, sender: '#mallory#d9' };
        expect(checkEvs(broken).map((violation) => violation.property)).toContain(expected);
      }),
      { numRuns: 200 },
    );
  });

  it('checks thousands of messages quickly', () => {
    const script: ModelOp[] = [];
    for (let c = 0; c < 12; c++) script.push({ op: 'join', client: c, group: c % 3 }, { op: 'join', client: c, group: (c + 1) % 3 });
    for (let i = 0; i < 3000; i++) {
      script.push({ op: 'send', client: i % 12, service: SERVICES[1 + (i % 5)], groups: [i % 3], privateTo: [], selfDiscard: false, late: i % 7 === 0 });
      if (i % 500 === 250) script.push({ op: 'partition', daemons: [i % 4] });
      if (i % 500 === 499) script.push({ op: 'merge' });
    }
    const logs = runReferenceModel({ daemons: 4, clients: 12, groups: 3 }, script);
    const deliveries = logs.reduce((sum, log) => sum + log.entries.filter((entry) => entry.type === 'data').length, 0);
    expect(deliveries).toBeGreaterThan(10_000);
    const started = performance.now();
    const violations = checkEvs(logs, { expectQuiescent: true });
    const elapsedMs = performance.now() - started;
    expect(violations, formatViolations(violations)).toEqual([]);
    expect(elapsedMs).toBeLessThan(2000);
  });
});

/** Adjacent data entries, both AGREED, that some other session also delivered both of. */
function swappable(logs: ClientLog[]): { session: number; index: number }[] {
  const delivered = logs.map((log) => new Set(log.entries.flatMap((entry) => (entry.type === 'data' ? [entry.id] : []))));
  const agreed = (entry: LogEntry | undefined): entry is Extract<LogEntry, { type: 'data' }> =>
    entry !== undefined && entry.type === 'data' && entry.service === 'AGREED';
  const result: { session: number; index: number }[] = [];
  logs.forEach((log, session) => {
    for (let index = 0; index + 1 < log.entries.length; index++) {
      const first = log.entries[index];
      const second = log.entries[index + 1];
      if (!agreed(first) || !agreed(second)) continue;
      if (delivered.some((set, other) => other !== session && set.has(first.id) && set.has(second.id))) result.push({ session, index });
    }
  });
  return result;
}
