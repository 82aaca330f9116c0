/**
 * Secure-group rekey time: from a view's delivery to its key being established
 * at every member (the latest member's key minus the earliest member's view), for
 * groups of --sizes members spread round-robin over --daemons daemons, all
 * sessions in this process. Each rekey is a join of one more member, then its
 * leave (both views are measured). Baseline in the same run: one AGREED round,
 * a plain multicast until every member has it (key agreement takes ⌈log2 n⌉ + 1
 * such rounds plus the crypto). Prints the median of every figure.
 *
 * Each size is measured twice: with every member checking every signature itself
 * (n² Ed25519 checks per view, all on this one process's thread, as if n members
 * shared one CPU), and with one SignatureCache for the process (each signature
 * checked once, closer to n members on n machines, who check in parallel).
 *
 * Build first (`npx tsc -p .`), then:
 *
 *   node dist/bench/secure-group.js [--sizes 2,4,8,16,32,64] [--rekeys 20] [--daemons 3] [--modes own,shared]
 */
import { performance } from 'node:perf_hooks';
import { connect, type Session } from '../src/client/index.js';
import { generateIdentity, secureGroup, SignatureCache, type SecureGroup } from '../src/apps/secure-group/index.js';
import { startRing, type StartedRing } from '../test/helpers/daemon.js';
import { exitWithUsageIfAsked, flag, median } from './common.js';
import { waitUntil } from '../test/helpers/log-collectors.js';

exitWithUsageIfAsked(import.meta.url);

const sizes = flag('sizes', '2,4,8,16,32,64').split(',').map(Number);
const rekeys = Number(flag('rekeys', '20'));
const daemonCount = Number(flag('daemons', '3'));
const modes = flag('modes', 'own,shared').split(',');

interface Member {
  session: Session;
  group: SecureGroup;
  /** view tag → [view delivered at, key established at] (performance.now ms). */
  views: Map<string, [number, number]>;
  excluded: number;
}

const identities = Array.from({ length: Math.max(...sizes) + 1 }, (_, index) => generateIdentity(`m${index}`));
const trust = Object.fromEntries(identities.map((entry) => [entry.identity.name, entry.publicKeyPem]));

/** Polls every millisecond: the end of a rekey is timed by it. */
const waitFor = (condition: () => boolean, what: string | (() => string)) => waitUntil(condition, what, 60_000, 1);

async function join(ring: StartedRing, group: string, index: number, signatureCache: SignatureCache | undefined): Promise<Member> {
  const daemon = ring.daemons[index % ring.daemons.length]!;
  const session = await connect({ daemon: `${daemon.port}@127.0.0.1`, queueMax: 100_000 });
  const views = new Map<string, [number, number]>();
  const secure = secureGroup(session, group, { identity: identities[index]!.identity, trust, signatureCache });
  secure.on('ready', (ready) => views.set(ready.viewTag, [ready.viewAtMs, ready.readyAtMs]));
  const member: Member = { session, group: secure, views, excluded: 0 };
  secure.on('excluded', () => (member.excluded += 1));
  return member;
}

/** Rekey time of the view every member has a key for now. */
function rekeyMs(members: Member[]): number {
  const tag = members[0]!.group.key!.viewTag;
  const times = members.map((member) => member.views.get(tag)!);
  return Math.max(...times.map(([, ready]) => ready)) - Math.min(...times.map(([view]) => view));
}

/** Why allKeyed is false: each member's roster size and drops. */
const keyState = (members: Member[]) => () =>
  members.map((member, index) => `m${index}:${member.group.key?.participants.length ?? '-'} x${member.excluded} ${JSON.stringify(member.group.drops)}`).join('; ');

const allKeyed = (members: Member[], size: number) => () =>
  members.every((member) => member.group.key?.participants.length === size && member.group.key.viewTag === members[0]!.group.key?.viewTag);

async function agreedRoundMs(members: Member[], group: string): Promise<number> {
  let received = 0;
  const onMessage = () => (received += 1);
  for (const member of members) member.session.on('message', onMessage);
  const start = performance.now();
  members[0]!.session.multicast(group, 'baseline', { messType: 1 });
  await waitFor(() => received >= members.length, 'baseline round');
  const ms = performance.now() - start;
  for (const member of members) member.session.off('message', onMessage);
  return ms;
}

async function measure(ring: StartedRing, size: number, shared: boolean): Promise<{ join: number; leave: number; all: number; round: number }> {
  const group = `bench-sg-${size}${shared ? 's' : ''}`;
  const cache = shared ? new SignatureCache() : undefined;
  const members: Member[] = [];
  for (let index = 0; index < size; index++) members.push(await join(ring, group, index, cache));
  await waitFor(allKeyed(members, size), `${size} members keyed`);
  const joins: number[] = [];
  const leaves: number[] = [];
  const rounds: number[] = [];
  for (let run = 0; run < rekeys; run++) {
    rounds.push(await agreedRoundMs(members, group));
    const extra = await join(ring, group, size, cache);
    const withExtra = [...members, extra];
    await waitFor(allKeyed(withExtra, size + 1), () => `join at ${size}: ${keyState(withExtra)()}`);
    joins.push(rekeyMs(withExtra));
    extra.group.close();
    await waitFor(allKeyed(members, size), () => `leave at ${size}: ${keyState(members)()}`);
    leaves.push(rekeyMs(members));
    await extra.session.disconnect();
  }
  for (const member of members) {
    member.group.close();
    await member.session.disconnect();
  }
  return { join: median(joins), leave: median(leaves), all: median([...joins, ...leaves]), round: median(rounds) };
}

const ring = await startRing({ count: daemonCount });
// A failure inside an event handler must not leave the daemons running.
process.once('uncaughtException', (error) => {
  console.error(error);
  void ring.stop().finally(() => process.exit(1));
});
try {
  console.log(`secure-group rekey, ${daemonCount} daemon(s), ${rekeys} joins + ${rekeys} leaves per size (medians, ms)`);
  console.log('members | rekey p50 (join, leave), own checks | rekey p50 (join, leave), shared cache | AGREED round p50 | shared rekey / round');
  const cell = (r: { all: number; join: number; leave: number }) => `${r.all.toFixed(1)} (${r.join.toFixed(1)}, ${r.leave.toFixed(1)})`;
  for (const size of sizes) {
    const skipped = { all: NaN, join: NaN, leave: NaN, round: NaN };
    const own = modes.includes('own') ? await measure(ring, size, false) : skipped;
    const shared = modes.includes('shared') ? await measure(ring, size, true) : skipped;
    const round = median([own.round, shared.round].filter((ms) => !Number.isNaN(ms)));
    console.log(`${size} | ${cell(own)} | ${cell(shared)} | ${round.toFixed(1)} | ${(shared.all / round).toFixed(1)}`);
  }
} finally {
  await ring.stop();
}
