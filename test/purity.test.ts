// The protocol core is a pure state machine (DEVELOPERS.md, design notes §"What this means"):
// nothing in these modules may reach a socket, a timer, the clock or unseeded randomness.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const PURE_FOLDERS = ['src/protocol', 'src/ring', 'src/groups'];
const PURE_FILES = [
  'src/daemon/node.ts',
  'src/daemon/handshake.ts',
  'src/daemon/validate.ts',
  'src/daemon/access-ip.ts',
  'src/daemon/session-output.ts',
  'src/daemon/rate-meter.ts',
  'src/checker/evs.ts',
  'src/config/parser.ts',
  'src/config/lexer.ts',
  'src/config/hash.ts',
  // Replicas must agree: same operations in the same order, same state.
  'src/apps/shared/replicated-map.ts',
  'src/apps/shared/state-transfer.ts',
  'src/apps/vip/assignment.ts',
  'src/apps/vip/group-state.ts',
  'src/apps/messaging/queue-state.ts',
  'src/apps/messaging/operations.ts',
  // Key agreement is driven deterministically by its tests (randomness comes in as leaf secrets).
  'src/apps/secure-group/agreement.ts',
  'src/apps/secure-group/key-tree.ts',
  'src/apps/secure-group/wire.ts',
  'src/apps/secure-group/x25519.ts',
  'src/apps/secure-group/envelope.ts',
  'src/apps/services/service-core.ts',
  'src/apps/services/reply-cache.ts',
  'src/apps/services/protocol.ts',
];

const FORBIDDEN: Array<[RegExp, string]> = [
  [/\bDate\.now\s*\(/, 'reads the clock (time is an input)'],
  [/\bnew Date\s*\(/, 'reads the clock (time is an input)'],
  [/\bperformance\.now\s*\(/, 'reads the clock (time is an input)'],
  [/\bprocess\.hrtime/, 'reads the clock (time is an input)'],
  [/\bMath\.random\s*\(/, 'unseeded randomness (pass a seeded PRNG)'],
  [/\bset(Timeout|Interval|Immediate)\s*\(/, 'sets a timer (return a deadline instead)'],
  [/from 'node:(net|dgram|http|https|fs|child_process|tls)'/, 'does I/O'],
  [/\bawait\b/, 'awaits (the core is synchronous)'],
];

function sources(): string[] {
  const files = [...PURE_FILES];
  for (const folder of PURE_FOLDERS) {
    for (const name of readdirSync(folder)) if (name.endsWith('.ts')) files.push(join(folder, name));
  }
  return files;
}

function stripComments(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:])\/\/.*$/gm, '$1');
}

describe('pure core', () => {
  it('never touches sockets, timers, the clock or unseeded randomness', () => {
    const offences: string[] = [];
    for (const file of sources()) {
      const code = stripComments(readFileSync(file, 'utf8'));
      for (const [pattern, why] of FORBIDDEN) {
        if (pattern.test(code)) offences.push(`${file}: ${why} (${pattern})`);
      }
    }
    expect(offences).toEqual([]);
  });
});
