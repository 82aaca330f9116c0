/**
 * Secure groups across a real network partition and merge: three daemons in their
 * own network namespaces (test/helpers/netns-spread.ts), one member on each, and a
 * tcpdump in the first daemon's namespace capturing the ring's traffic. Each side of
 * the partition rekeys to a key of its own, the merge to a third; a key from one side
 * opens nothing sent on the other; the capture holds a plain client's control marker
 * (so it does see the ring) and none of the secure group's plaintext.
 * Needs root, iproute2 and tcpdump; every process is killed by pid and every
 * namespace deleted in afterAll.
 */
import { spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { connect, type DataMessage, type Session } from '../src/client/index.js';
import {
  DATA_MESS_TYPE,
  envelopeViewTag,
  generateIdentity,
  openEnvelope,
  secureGroup,
  type EstablishedKey,
  type SecureGroup,
  type SecureMessage,
} from '../src/apps/secure-group/index.js';
import { ensureBuilt } from './fake-daemon/processes.js';
import { waitUntil } from './helpers/log-collectors.js';
import { netnsAvailable } from './helpers/netns.js';
import { CLIENT_PORT, SpreadLab } from './helpers/netns-spread.js';

const GROUP = 'vault';
const noNetns = netnsAvailable();
const tcpdumpMissing = spawnSync('tcpdump', ['--version']).error?.message ?? null;
const names = ['alice', 'bob', 'carol'] as const;
const identities = names.map((name) => generateIdentity(name));
const trust = Object.fromEntries(identities.map((entry) => [entry.identity.name, entry.publicKeyPem]));

interface Member {
  group: SecureGroup;
  received: SecureMessage[];
}

const fingerprint = (member: Member) => member.group.key?.fingerprint;
const roster = (member: Member) => (member.group.key?.participants ?? []).map((p) => p.identity).join(',');

async function keyed(members: Member[], identitiesWanted: string[]): Promise<EstablishedKey> {
  const want = identitiesWanted.join(',');
  await waitUntil(
    () => members.every((m) => roster(m) === want && fingerprint(m) === fingerprint(members[0]!)),
    () => `rosters ${members.map((m) => `${roster(m)}/${fingerprint(m)}`).join(' ')}, want ${want}`,
    30_000,
  );
  return members[0]!.group.key!;
}

const labs: SpreadLab[] = [];
const captures: ChildProcess[] = [];
const sessions: Session[] = [];
let dir: string | undefined;

/** A session on lab daemon `index` (its Unix socket reaches across the namespace), collecting data messages. */
async function sessionOn(lab: SpreadLab, index: number, privateName: string): Promise<{ session: Session; data: DataMessage[] }> {
  const session = await connect({ daemon: String(CLIENT_PORT), unixSocketDir: lab.daemons[index]!.unixDir, privateName });
  sessions.push(session);
  const data: DataMessage[] = [];
  session.on('message', (message) => data.push(message));
  return { session, data };
}

afterAll(async () => {
  await Promise.all(sessions.map((session) => session.disconnect().catch(() => undefined)));
  for (const capture of captures) if (capture.pid !== undefined && capture.exitCode === null) process.kill(capture.pid, 'SIGKILL');
  for (const lab of labs) await lab.destroy();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
}, 30_000);

describe('secure groups through a network partition and merge', () => {
  it('has root, iproute2 and tcpdump (CI runs as root; .ci/run installs them)', () => {
    expect(noNetns, noNetns ?? '').toBeNull();
    expect(tcpdumpMissing, `tcpdump: ${tcpdumpMissing}`).toBeNull();
  });

  it('gives each side its own key, then one new key after the merge, and puts no plaintext on the wire', async () => {
    ensureBuilt();
    dir = mkdtempSync(join(tmpdir(), 'tspread-secure-partition-'));
    const lab = await SpreadLab.start(3);
    labs.push(lab);
    const pcap = join(dir, 'ring.pcap');
    const capture = lab.net.spawn(0, 'tcpdump', ['-i', 'any', '-U', '-n', '-w', pcap, 'udp'], { stdio: ['ignore', 'ignore', 'pipe'] });
    captures.push(capture);
    let captureLog = '';
    capture.stderr!.setEncoding('utf8').on('data', (text: string) => (captureLog += text));
    await waitUntil(() => captureLog.includes('listening on'), () => `tcpdump did not start: ${captureLog}`);

    // A plain client's message: the capture's positive control.
    const plainSender = await sessionOn(lab, 2, 'plain2');
    const plainReceiver = await sessionOn(lab, 0, 'plain0');
    plainReceiver.session.join('plain');
    const observer = await sessionOn(lab, 0, 'watcher');
    observer.session.join(GROUP);

    const members: Member[] = [];
    for (let index = 0; index < 3; index++) {
      const { session } = await sessionOn(lab, index, names[index]!);
      const group = secureGroup(session, GROUP, { identity: identities[index]!.identity, trust, rosterWaitMs: 300 });
      const member: Member = { group, received: [] };
      group.on('message', (message) => member.received.push(message));
      members.push(member);
    }
    const [alice, bob, carol] = members as [Member, Member, Member];
    const whole = await keyed(members, ['alice', 'bob', 'carol']);
    alice.group.send('MARKER-whole secret');
    await waitUntil(() => carol.received.length === 1, () => 'carol missed the first message');
    plainSender.session.multicast('plain', 'PLAINCONTROL-ring-is-captured');
    await waitUntil(() => plainReceiver.data.length > 0, () => 'control marker not delivered');

    lab.partition([[0, 1], [2]]);
    const sideAB = await keyed([alice, bob], ['alice', 'bob']);
    const sideC = await keyed([carol], ['carol']);
    expect(new Set([whole.fingerprint, sideAB.fingerprint, sideC.fingerprint]).size).toBe(3);
    alice.group.send('MARKER-side-ab secret');
    carol.group.send('MARKER-side-c secret');
    await waitUntil(() => bob.received.some((m) => m.data.toString().startsWith('MARKER-side-ab')), () => 'bob missed side ab');
    await waitUntil(() => carol.received.some((m) => m.data.toString().startsWith('MARKER-side-c')), () => 'carol missed her own');
    expect(alice.received.some((m) => m.data.toString().startsWith('MARKER-side-c'))).toBe(false);

    lab.heal();
    const merged = await keyed(members, ['alice', 'bob', 'carol']);
    expect([whole.fingerprint, sideAB.fingerprint, sideC.fingerprint]).not.toContain(merged.fingerprint);
    bob.group.send('MARKER-merged secret');
    await waitUntil(() => members.every((m) => m.received.some((r) => r.data.toString().startsWith('MARKER-merged'))), () => 'merged message missed');

    // Carol's partition key opens nothing the other side sent, and no key opens another view's traffic.
    const seen = observer.data.filter((m) => m.messType === DATA_MESS_TYPE);
    const fromSideAB = seen.filter((m) => envelopeViewTag(m.data) === sideAB.viewTag);
    expect(fromSideAB.length).toBeGreaterThan(0);
    for (const message of fromSideAB) {
      expect(openEnvelope(GROUP, { ...sideC, viewTag: sideAB.viewTag }, message.sender, message.data).ok).toBe(false);
      expect(openEnvelope(GROUP, { ...merged, viewTag: sideAB.viewTag }, message.sender, message.data).ok).toBe(false);
    }
    for (const message of seen) expect(Buffer.from(message.data).includes('MARKER')).toBe(false);

    process.kill(capture.pid!, 'SIGTERM');
    await new Promise((resolve) => capture.once('exit', resolve));
    const bytes = readFileSync(pcap);
    expect(bytes.includes('PLAINCONTROL-ring-is-captured')).toBe(true);
    expect(bytes.includes('MARKER')).toBe(false);
  }, 120_000);
});
