/**
 * Secure groups with real processes: three daemons, members on different daemons
 * (library members in this process, one `tspread secure-chat` process), a passive
 * observer joined to the group, through joins, a leave, a SIGKILLed member, an
 * untrusted member, and a daemon killed and restarted (the ring partitions and
 * merges). Every view's members share one key; the observer sees only ciphertext;
 * a departed member's last key opens nothing sent later, a joiner's nothing sent
 * earlier; the untrusted member never gets a key.
 */
import { generateKeyPairSync } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type DataMessage, type Session } from '../src/client/index.js';
import {
  DATA_MESS_TYPE,
  envelopeViewTag,
  generateIdentity,
  openEnvelope,
  SECURE_MESSAGE_BYTES_MAX,
  secureGroup,
  type EstablishedKey,
  type ReadyEvent,
  type SecureGroup,
  type SecureMessage,
} from '../src/apps/secure-group/index.js';
import { ensureBuilt, ToolProcess } from './fake-daemon/processes.js';
import { CLI_PATH, startDaemon, startRing, type StartedRing } from './helpers/daemon.js';
import { waitUntil } from './helpers/log-collectors.js';

const GROUP = 'vault';
const ROSTER_WAIT_MS = 300;
const names = ['alice', 'bob', 'carol', 'dave'] as const;
const identities = Object.fromEntries(names.map((name) => [name, generateIdentity(name)]));
/** The library members' trust list; erin's key (made by `tspread secure-keygen`) is added in beforeAll. */
const trust: Record<string, string> = Object.fromEntries(names.map((name) => [name, identities[name]!.publicKeyPem]));

interface Member {
  name: string;
  session: Session;
  group: SecureGroup;
  ready: ReadyEvent[];
  received: SecureMessage[];
  excluded: number;
}

let ring: StartedRing;
let dir: string;
const sessions: Session[] = [];
const processes: ToolProcess[] = [];
/** Every ready event of every member: view tag → fingerprints. */
const fingerprintsByView = new Map<string, Set<string>>();
/** What the passive observer received: the group's data as the daemons carry it. */
const observed: DataMessage[] = [];

const daemonName = (index: number) => `${ring.daemons[index]!.port}@127.0.0.1`;

async function member(name: string, daemon: number, identity = identities[name]!.identity): Promise<Member> {
  const session = await connect({ daemon: daemonName(daemon) });
  sessions.push(session);
  const group = secureGroup(session, GROUP, { identity, trust, rosterWaitMs: ROSTER_WAIT_MS });
  const record: Member = { name, session, group, ready: [], received: [], excluded: 0 };
  group.on('ready', (ready) => {
    record.ready.push(ready);
    const set = fingerprintsByView.get(ready.viewTag) ?? new Set();
    set.add(ready.fingerprint);
    fingerprintsByView.set(ready.viewTag, set);
  });
  group.on('message', (message) => record.received.push(message));
  group.on('excluded', () => (record.excluded += 1));
  return record;
}

const identitiesOf = (m: Member) => (m.group.key?.participants ?? []).map((p) => p.identity).sort().join(',');

async function sameKey(members: Member[], expected: string[]): Promise<string> {
  const want = [...expected].sort().join(',');
  await waitUntil(
    () => members.every((m) => identitiesOf(m) === want && m.group.key?.fingerprint === members[0]!.group.key?.fingerprint),
    () => `keys: ${members.map((m) => `${m.name}=${m.group.key?.fingerprint ?? '-'}[${identitiesOf(m)}]`).join(' ')} want [${want}]`,
    30_000,
  );
  return members[0]!.group.key!.fingerprint;
}

function observedWith(marker: string): DataMessage[] {
  return observed.filter((message) => message.messType === DATA_MESS_TYPE && sentMarkers.get(envelopeViewTag(message.data) ?? '')?.includes(marker));
}
/** view tag → markers sent under it (the test's own bookkeeping of what it sent). */
const sentMarkers = new Map<string, string[]>();

function send(from: Member, marker: string): void {
  const tag = from.group.key!.viewTag;
  sentMarkers.set(tag, [...(sentMarkers.get(tag) ?? []), marker]);
  from.group.send(`${marker} secret text`);
}

const cannotOpen = (key: EstablishedKey, message: DataMessage) => {
  const tagMatches = envelopeViewTag(message.data) === key.viewTag;
  const forced = openEnvelope(GROUP, { ...key, viewTag: envelopeViewTag(message.data)! }, message.sender, message.data);
  return !tagMatches && !forced.ok;
};

beforeAll(async () => {
  ensureBuilt();
  dir = mkdtempSync(join(tmpdir(), 'tspread-secure-group-'));
  // erin's identity comes from the CLI; the trust directory holds everyone's NAME.pub.
  mkdirSync(join(dir, 'trust'));
  execFileSync(process.execPath, [CLI_PATH, 'secure-keygen', 'erin', '--out', dir]);
  expect(statSync(join(dir, 'erin.key')).mode & 0o777).toBe(0o600);
  trust.erin = readFileSync(join(dir, 'erin.pub'), 'utf8');
  for (const [name, pem] of Object.entries(trust)) writeFileSync(join(dir, 'trust', `${name}.pub`), pem);
  ring = await startRing({ count: 3 });
}, 60_000);

afterAll(async () => {
  for (const tool of processes) tool.kill();
  await Promise.all(sessions.map((session) => session.disconnect().catch(() => undefined)));
  await ring?.stop();
  rmSync(dir, { recursive: true, force: true });
}, 30_000);

describe('secure groups across three daemons', () => {
  it('rekeys on every view, shares each key only inside its view, and shows the daemons only ciphertext', async () => {
    // A passive observer: a plain Spread client in the group, not in the trust list.
    const observers: Session[] = [];
    for (const daemon of [2, 0]) {
      const observer = await connect({ daemon: daemonName(daemon) });
      sessions.push(observer);
      observers.push(observer);
      observer.on('message', (message) => observed.push(message));
      observer.join(GROUP);
    }

    const alice = await member('alice', 0);
    const bob = await member('bob', 1);
    const first = await sameKey([alice, bob], ['alice', 'bob']);
    send(alice, 'MARKER-before-carol');
    await waitUntil(() => bob.received.length === 1, () => 'bob did not get the first message');
    // The largest message fits Spread's limit once sealed; one byte more is refused at once.
    alice.group.send(Buffer.alloc(SECURE_MESSAGE_BYTES_MAX, 'x'));
    expect(() => alice.group.send(Buffer.alloc(SECURE_MESSAGE_BYTES_MAX + 1))).toThrow(RangeError);
    await waitUntil(() => bob.received.length === 2, () => 'bob did not get the largest message');
    expect(bob.received[1]!.data.length).toBe(SECURE_MESSAGE_BYTES_MAX);

    // Join on the third daemon.
    const carol = await member('carol', 2);
    const withCarol = await sameKey([alice, bob, carol], ['alice', 'bob', 'carol']);
    expect(withCarol).not.toBe(first);
    const [beforeCarol] = observedWith('MARKER-before-carol');
    expect(beforeCarol).toBeDefined();
    expect(cannotOpen(carol.group.key!, beforeCarol!)).toBe(true); // a joiner cannot read earlier traffic

    // A member in its own process.
    const erin = new ToolProcess([
      'secure-chat', '-g', GROUP, '--identity', 'erin', '--key', join(dir, 'erin.key'), '--trust', join(dir, 'trust'),
      '-s', daemonName(1), '--roster-wait-ms', String(ROSTER_WAIT_MS),
    ]);
    processes.push(erin);
    const withErin = await sameKey([alice, bob, carol], ['alice', 'bob', 'carol', 'erin']);
    await erin.waitFor(`ready ${withErin} `, 30_000);
    send(bob, 'MARKER-to-four');
    await erin.waitFor('bob: MARKER-to-four secret text', 20_000);
    await waitUntil(() => carol.received.some((m) => m.data.toString().startsWith('MARKER-to-four')), () => 'carol missed it');

    // Leave: carol keeps her session and her last key.
    const carolsLastKey = carol.group.key!;
    carol.group.close();
    await sameKey([alice, bob], ['alice', 'bob', 'erin']);
    send(alice, 'MARKER-after-carol');
    await erin.waitFor('alice: MARKER-after-carol secret text', 20_000);
    const [afterCarol] = observedWith('MARKER-after-carol');
    expect(cannotOpen(carolsLastKey, afterCarol!)).toBe(true);
    expect(carol.received.some((m) => m.data.toString().includes('MARKER-after-carol'))).toBe(false);

    // A member's process SIGKILLed.
    const erinsLastFingerprint = withErin;
    erin.kill();
    const afterErin = await sameKey([alice, bob], ['alice', 'bob']);
    expect(afterErin).not.toBe(erinsLastFingerprint);

    // An untrusted key under a trusted name is left out and reads nothing.
    const forged = { name: 'dave', privateKey: generateKeyPairSync('ed25519').privateKey };
    const mallory = await member('mallory', 0, forged);
    await waitUntil(() => mallory.excluded > 0, () => 'mallory was not excluded', 30_000);
    await sameKey([alice, bob], ['alice', 'bob']);
    send(bob, 'MARKER-not-for-mallory');
    await waitUntil(() => alice.received.some((m) => m.data.toString().startsWith('MARKER-not-for-mallory')), () => 'alice missed it');
    expect(mallory.received).toHaveLength(0);
    expect(mallory.group.key).toBeNull();
    await waitUntil(() => (mallory.group.drops['unknown-view'] ?? 0) > 0, () => `mallory drops: ${JSON.stringify(mallory.group.drops)}`);

    // A plain client replaying a member's ciphertext under its own name is dropped and counted.
    const [captured] = observedWith('MARKER-not-for-mallory');
    const received = alice.received.length;
    observers[1]!.multicast(GROUP, captured!.data, { messType: DATA_MESS_TYPE });
    await waitUntil(() => (alice.group.drops['not-a-member'] ?? 0) > 0, () => `alice drops: ${JSON.stringify(alice.group.drops)}`);
    expect(alice.received.length).toBe(received);

    // Daemon 3 dies (partition: dave on it is cut off), comes back (merge) and dave rejoins.
    const dave = await member('dave', 2);
    await sameKey([alice, bob, dave], ['alice', 'bob', 'dave']);
    const d3 = ring.daemons[2]!;
    d3.process.kill('SIGKILL');
    await d3.stop();
    const partitioned = await sameKey([alice, bob], ['alice', 'bob']);
    ring.daemons[2] = await startDaemon({ port: d3.port, config: ring.config, args: ['-n', 'd3'] });
    const dave2 = await member('dave', 2);
    const merged = await sameKey([alice, bob, dave2], ['alice', 'bob', 'dave']);
    expect(merged).not.toBe(partitioned);
    send(dave2, 'MARKER-after-merge');
    await waitUntil(() => bob.received.some((m) => m.data.toString().startsWith('MARKER-after-merge')), () => 'bob missed it');

    // Each view had one key; the daemons carried no plaintext.
    for (const [tag, fingerprints] of fingerprintsByView) expect(fingerprints.size, tag).toBe(1);
    expect(fingerprintsByView.size).toBeGreaterThanOrEqual(7);
    expect(observedWith('MARKER-after-merge').length).toBeGreaterThan(0);
    for (const message of observed) expect(Buffer.from(message.data).includes('MARKER')).toBe(false);
    expect(alice.group.drops).not.toHaveProperty('bad-tag');
  }, 180_000);
});
