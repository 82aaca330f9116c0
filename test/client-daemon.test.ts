// The client library against a real `tspread daemon` process, over TCP and the
// Unix socket: memberships, the six services, multigroup, private groups,
// self-discard, leave, disconnect and daemon-side connect rejects.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, ErrorCode, groupIdsEqual, type Message, type Session } from '../src/client/index.js';
import { soloConfig, startDaemon, type StartedDaemon } from './helpers/daemon.js';
import { ensureBuilt } from './fake-daemon/processes.js';

const PORT = 24910;

/** Reads messages until one matches; fails after `timeoutMs`. */
async function receive<T extends Message>(
  iterator: AsyncIterator<Message>,
  predicate: (message: Message) => message is T,
  timeoutMs = 5000,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('timed out waiting for a message')), timeoutMs);
  });
  try {
    for (;;) {
      const result = await Promise.race([iterator.next(), timeout]);
      if (result.done) throw new Error('session ended');
      if (predicate(result.value)) return result.value;
    }
  } finally {
    clearTimeout(timer);
  }
}

const isData = (message: Message): message is Extract<Message, { kind: 'data' }> => message.kind === 'data';
const isMembership = (message: Message): message is Extract<Message, { kind: 'membership' }> => message.kind === 'membership';

/** The next message, which must be a data message. */
async function nextData(iterator: AsyncIterator<Message>) {
  const message = await receive(iterator, (m): m is Message => true);
  expect(message.kind).toBe('data');
  return message as Extract<Message, { kind: 'data' }>;
}

let daemon: StartedDaemon;
beforeAll(async () => {
  ensureBuilt();
  daemon = await startDaemon({ port: PORT, config: soloConfig(PORT) });
}, 120_000);
afterAll(async () => {
  await daemon?.stop();
});

const transports = [
  ['TCP', () => ({ daemon: `${PORT}@127.0.0.1` })],
  ['the Unix socket', () => ({ daemon: String(PORT), unixSocketDir: daemon.unixPath.replace(/\/[^/]+$/, '') })],
] as const;

describe.each(transports)('two sessions over %s', (transport, endpoint) => {
  const suffix = transport === 'TCP' ? 't' : 'u';
  let alice: Session;
  let bob: Session;
  let aliceIn: AsyncIterator<Message>;
  let bobIn: AsyncIterator<Message>;
  const group = `grp-${suffix}`;

  beforeAll(async () => {
    alice = await connect({ ...endpoint(), privateName: `alice${suffix}` });
    bob = await connect({ ...endpoint(), privateName: `bob${suffix}` });
    aliceIn = alice[Symbol.asyncIterator]();
    bobIn = bob[Symbol.asyncIterator]();
  });
  afterAll(async () => {
    await alice?.disconnect();
    await bob?.disconnect();
  });

  it('connects with private groups #name#localhost', () => {
    expect(alice.privateGroup).toBe(`#alice${suffix}#localhost`);
    expect(bob.privateGroup).toBe(`#bob${suffix}#localhost`);
    expect(alice.daemonVersion).toEqual({ major: 5, minor: 0, patch: 1 });
  });

  it('both see each other join, with the same group id', async () => {
    alice.join(group);
    const own = await receive(aliceIn, isMembership);
    expect(own).toMatchObject({ group, cause: 'join', members: [alice.privateGroup], changedMember: alice.privateGroup, myIndex: 0 });
    bob.join(group);
    const atAlice = await receive(aliceIn, isMembership);
    const atBob = await receive(bobIn, isMembership);
    const members = [alice.privateGroup, bob.privateGroup].sort();
    expect(atAlice).toMatchObject({ group, cause: 'join', members, changedMember: bob.privateGroup, vsSets: [[bob.privateGroup]] });
    expect(atBob).toMatchObject({ group, cause: 'join', members, changedMember: bob.privateGroup });
    expect(atAlice.myIndex).toBe(members.indexOf(alice.privateGroup));
    expect(atBob.myIndex).toBe(members.indexOf(bob.privateGroup));
    expect(groupIdsEqual(atAlice.gid, atBob.gid)).toBe(true);
    expect(atAlice.gid.index).toBe(own.gid.index + 1);
  });

  it('exchanges all six services, in order, with mess types', async () => {
    const services = ['unreliable', 'reliable', 'fifo', 'causal', 'agreed', 'safe'] as const;
    services.forEach((service, index) => alice.multicast(group, `${service} message`, { service, messType: index - 3 }));
    for (const [index, service] of services.entries()) {
      for (const iterator of [bobIn, aliceIn]) {
        const message = await nextData(iterator);
        expect(message).toMatchObject({ service, sender: alice.privateGroup, groups: [group], messType: index - 3, endianMismatch: false, selfDiscard: false });
        expect(Buffer.from(message.data).toString()).toBe(`${service} message`);
      }
    }
  });

  it('delivers a multigroup message once, and a message to a private group', async () => {
    const other = `other-${suffix}`;
    alice.join(other);
    await receive(aliceIn, isMembership);
    bob.multicast([group, other], 'both', { service: 'agreed' });
    const message = await nextData(aliceIn);
    expect(message.groups).toEqual([group, other]);
    expect((await nextData(bobIn)).groups).toEqual([group, other]);
    bob.multicast(alice.privateGroup, 'private', { service: 'fifo', messType: 9 });
    const direct = await nextData(aliceIn);
    expect(direct).toMatchObject({ sender: bob.privateGroup, groups: [alice.privateGroup], messType: 9 });
    expect(Buffer.from(direct.data).toString()).toBe('private');
    alice.leave(other);
    expect(await receive(aliceIn, isMembership)).toMatchObject({ group: other, cause: 'self-leave' });
  });

  it('honours self-discard and open-group sends from non-members', async () => {
    alice.multicast(group, 'discarded', { selfDiscard: true });
    alice.multicast(group, 'kept');
    expect(await nextData(bobIn)).toMatchObject({ selfDiscard: true, data: Buffer.from('discarded') });
    expect(await nextData(bobIn)).toMatchObject({ selfDiscard: false, data: Buffer.from('kept') });
    expect(await nextData(aliceIn)).toMatchObject({ data: Buffer.from('kept') });
    const outsider = await connect({ ...endpoint(), privateName: `out${suffix}`, membership: false });
    outsider.multicast(group, 'from outside', { service: 'safe' });
    expect(await nextData(aliceIn)).toMatchObject({ sender: outsider.privateGroup, service: 'safe' });
    expect(await nextData(bobIn)).toMatchObject({ sender: outsider.privateGroup });
    await outsider.disconnect();
  });

  it('carries the largest message (143 120 bytes to one group)', async () => {
    const big = Buffer.alloc(143_120);
    for (let i = 0; i < big.length; i++) big[i] = i & 0xff;
    alice.multicast(group, big, { service: 'reliable' });
    expect(Buffer.from((await nextData(bobIn)).data).equals(big)).toBe(true);
    expect(Buffer.from((await nextData(aliceIn)).data).equals(big)).toBe(true);
  });

  it('reports leave and disconnect', async () => {
    bob.leave(group);
    expect(await receive(bobIn, isMembership)).toMatchObject({ group, cause: 'self-leave', members: [], myIndex: -1 });
    expect(await receive(aliceIn, isMembership)).toMatchObject({ group, cause: 'leave', changedMember: bob.privateGroup, members: [alice.privateGroup] });
    bob.join(group);
    await receive(bobIn, isMembership);
    await receive(aliceIn, isMembership);
    await bob.disconnect();
    expect(await bob.closed()).toBeUndefined();
    expect(await receive(aliceIn, isMembership)).toMatchObject({ group, cause: 'disconnect', changedMember: bob.privateGroup, members: [alice.privateGroup] });
  });
});

describe('connect rejects from the daemon', () => {
  it('REJECT_NOT_UNIQUE for a name in use, REJECT_ILLEGAL_NAME for a bad one', async () => {
    const endpoint = { daemon: `${PORT}@127.0.0.1` };
    const first = await connect({ ...endpoint, privateName: 'dup' });
    await expect(connect({ ...endpoint, privateName: 'dup' })).rejects.toMatchObject({ code: ErrorCode.REJECT_NOT_UNIQUE });
    await expect(connect({ ...endpoint, privateName: 'a b' })).rejects.toMatchObject({ code: ErrorCode.REJECT_ILLEGAL_NAME });
    const generated = await connect({ ...endpoint, privateName: '' });
    expect(generated.privateGroup).toMatch(/^#r\d+-\d+#localhost$/);
    await first.disconnect();
    await generated.disconnect();
  });
});
