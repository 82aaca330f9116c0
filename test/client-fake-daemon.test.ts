// The client library against a scripted fake Spread 5.0.1 daemon: exact bytes in
// both directions (spread-protocol.md §2, §3, §5), both daemon byte orders,
// rejects, framing split at every byte, back-pressure, and name parsing.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  connect,
  ConnectError,
  ConnectionClosedError,
  ErrorCode,
  InvalidRequestError,
  parseSpreadName,
  RejectedError,
  type Message,
  type Session,
} from '../src/client/index.js';
import { FakeDaemon, hex, name32, type FakeConnection } from './fake-daemon/fake-daemon.js';
import { observed } from './fake-daemon/observed.js';
import { le32 } from './helpers/bytes.js';

const be32 = (value: number) => {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(value >>> 0);
  return out;
};

/** A daemon→client message; `type` gets the daemon's marker when little-endian. */
function daemonMessage(opts: {
  type: number;
  sender: string;
  groups: string[];
  hint: Buffer;
  data: Buffer;
  littleEndian?: boolean;
  oldType?: number;
}): Buffer {
  const le = opts.littleEndian ?? true;
  const int = le ? le32 : be32;
  const mark = (value: number) => (le ? (value | 0x80000080) >>> 0 : value);
  return Buffer.concat([
    int(mark(opts.type)),
    name32(opts.sender),
    int(opts.groups.length),
    opts.hint,
    int(opts.data.length),
    ...(opts.oldType === undefined ? [] : [int(mark(opts.oldType))]),
    ...opts.groups.map(name32),
    opts.data,
  ]);
}

/** A regular membership body in either byte order (§5.3). */
function regularBody(gid: [number, number, number], sets: string[][], localOffset: number, le = true): Buffer {
  const int = le ? le32 : be32;
  return Buffer.concat([
    ...gid.map(int),
    int(sets.length),
    int(localOffset),
    ...sets.flatMap((set) => [int(set.length), ...set.map(name32)]),
  ]);
}

async function next(iterator: AsyncIterator<Message>): Promise<Message> {
  const result = await iterator.next();
  if (result.done) throw new Error('session ended');
  return result.value;
}

let fake: FakeDaemon;
const sessions: Session[] = [];

async function open(privateName = 'alice', daemonName = 'localhost', extra = {}) {
  const pending = connect({ ...fake.endpoint, privateName, ...extra });
  const connection = await fake.accept();
  const handshake = await connection.acceptSession(daemonName);
  const session = await pending;
  sessions.push(session);
  return { session, connection, handshake, messages: session[Symbol.asyncIterator]() };
}

beforeEach(async () => {
  fake = await FakeDaemon.tcp();
});
afterEach(async () => {
  await fake.close();
  await Promise.all(sessions.splice(0).map((session) => session.closed()));
});

describe('Spread names (§1.1)', () => {
  it('maps port, port@host, IPv6 literals and the empty name', () => {
    expect(parseSpreadName('')).toEqual({ kind: 'unix', path: '/tmp/4803', port: 4803 });
    expect(parseSpreadName('4803')).toEqual({ kind: 'unix', path: '/tmp/4803', port: 4803 });
    expect(parseSpreadName('24901', '/var/run')).toEqual({ kind: 'unix', path: '/var/run/24901', port: 24901 });
    expect(parseSpreadName('4803@localhost')).toEqual({ kind: 'tcp', host: 'localhost', port: 4803 });
    expect(parseSpreadName('4804@10.0.0.1')).toEqual({ kind: 'tcp', host: '10.0.0.1', port: 4804 });
    expect(parseSpreadName('4803@::1')).toEqual({ kind: 'tcp', host: '::1', port: 4803 });
    expect(parseSpreadName('4803@[fe80::1]')).toEqual({ kind: 'tcp', host: 'fe80::1', port: 4803 });
  });
  it.each(['abc', '4803x', '4803 x', 'x4803', '4803@', '-1', '70000', '4803@a b', `4803@${'h'.repeat(70)}`])(
    'refuses %j with ILLEGAL_SPREAD',
    (name) => {
      expect(() => parseSpreadName(name)).toThrow(ConnectError);
      try {
        parseSpreadName(name);
      } catch (error) {
        expect((error as ConnectError).code).toBe(ErrorCode.ILLEGAL_SPREAD);
      }
    },
  );
  it('connect() rejects a bad name and an unresolvable host with ILLEGAL_SPREAD', async () => {
    await expect(connect('bogus')).rejects.toMatchObject({ code: ErrorCode.ILLEGAL_SPREAD });
    await expect(connect({ daemon: '4803@no-such-host.invalid', timeoutMs: 5000 })).rejects.toMatchObject({
      code: ErrorCode.ILLEGAL_SPREAD,
    });
  });
  it('connect() to a missing socket gives COULD_NOT_CONNECT', async () => {
    await expect(connect({ daemon: '24999', unixSocketDir: '/nonexistent-dir' })).rejects.toMatchObject({
      name: 'ConnectError',
      code: ErrorCode.COULD_NOT_CONNECT,
    });
  });
});

describe('handshake (§2)', () => {
  it('sends the 5+L connect request in one write, then the 90-byte NULL choice (§2.8)', async () => {
    const { session, connection, handshake } = await open('alice');
    expect(handshake.request).toEqual(hex('05 00 01 01 05 61 6c 69 63 65'));
    expect(connection.chunks[0]).toEqual(hex('05 00 01 01 05 61 6c 69 63 65'));
    expect(handshake.choice).toEqual(Buffer.concat([hex('4e 55 4c 4c'), Buffer.alloc(86)]));
    expect(session.privateGroup).toBe('#alice#localhost');
    expect(session.daemonVersion).toEqual({ major: 5, minor: 0, patch: 1 });
  });
  it('encodes flags, truncates long names and sends L=0 for a daemon-chosen name', async () => {
    const a = await open('', 'localhost', { membership: false, priority: 1 });
    expect(a.handshake.request).toEqual(hex('05 00 01 10 00'));
    expect(a.session.privateGroup).toBe('#r1234-5#localhost');
    const b = await open('abcdefghijklmn');
    expect(b.handshake.request).toEqual(Buffer.concat([hex('05 00 01 01 0a'), Buffer.from('abcdefghij')]));
  });
  it('connects to an IPv6 literal ("<port>@::1")', async () => {
    const v6 = await FakeDaemon.tcp('::1').catch(() => null);
    if (v6 === null) return; // no IPv6 loopback on this host
    try {
      expect(v6.endpoint.daemon).toMatch(/^\d+@::1$/);
      const pending = connect({ ...v6.endpoint, privateName: 'v6' });
      await (await v6.accept()).acceptSession('d6');
      const session = await pending;
      expect(session.privateGroup).toBe('#v6#d6');
      await session.disconnect();
    } finally {
      await v6.close();
    }
  });
  it('works over a Unix-domain socket named by port', async () => {
    const unixFake = await FakeDaemon.unix(24950);
    try {
      const pending = connect({ ...unixFake.endpoint, privateName: 'u1' });
      const connection = await unixFake.accept();
      await connection.acceptSession('d1');
      const session = await pending;
      expect(session.privateGroup).toBe('#u1#d1');
      await Promise.all([session.disconnect(), connection.eof()]);
    } finally {
      await unixFake.close();
    }
  });
  it.each([
    ['REJECT_QUOTA', 'fd', -3],
    ['REJECT_NO_NAME', 'fc', -4],
    ['REJECT_ILLEGAL_NAME', 'fb', -5],
    ['REJECT_NOT_UNIQUE', 'fa', -6],
    ['REJECT_VERSION', 'f9', -7],
    ['REJECT_AUTH', 'f7', -9],
  ])('a single %s byte instead of the auth list rejects the connect', async (codeName, byte, code) => {
    const pending = connect({ ...fake.endpoint, privateName: 'alice' });
    const connection = await fake.accept();
    await connection.read(10);
    connection.end(hex(byte));
    const error = await pending.catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(RejectedError);
    expect(error).toMatchObject({ code, codeName });
  });
  it('REJECT_AUTH after the choice (§2.5: observed F7)', async () => {
    const pending = connect({ ...fake.endpoint, privateName: 'alice' });
    const connection = await fake.accept();
    await connection.read(10);
    connection.write(hex('05 4e 55 4c 4c 20'));
    await connection.read(90);
    connection.end(hex('f7'));
    await expect(pending).rejects.toMatchObject({ name: 'RejectedError', code: ErrorCode.REJECT_AUTH });
  });
  it('refuses locally when NULL is not offered (empty list, or "IP ")', async () => {
    for (const list of ['00', '03 49 50 20']) {
      const pending = connect({ ...fake.endpoint, privateName: 'alice' });
      const connection = await fake.accept();
      await connection.read(10);
      connection.write(hex(list));
      await expect(pending).rejects.toMatchObject({ code: ErrorCode.REJECT_AUTH });
      await connection.closed;
      expect(connection.pending).toBe(0); // no choice was sent
    }
  });
  it('requests the configured methods', async () => {
    const pending = connect({ ...fake.endpoint, privateName: 'alice', authMethods: ['IP'] });
    const connection = await fake.accept();
    await connection.read(10);
    connection.write(Buffer.from('\x08NULL IP ', 'latin1'));
    expect(await connection.read(90)).toEqual(Buffer.concat([Buffer.from('IP'), Buffer.alloc(88)]));
    connection.write(Buffer.concat([hex('01 05 00 01 0c'), Buffer.from('#alice#fake1')]));
    sessions.push(await pending);
  });
  it('CONNECTION_CLOSED on EOF, a bad accept length, and REJECT_VERSION for an old daemon', async () => {
    const cases: [string, number][] = [
      ['', ErrorCode.CONNECTION_CLOSED],
      ['01 05 00 01 20', ErrorCode.CONNECTION_CLOSED], // N = 32
      ['01 02 00 00 04', ErrorCode.REJECT_VERSION],
      ['01 05 00', ErrorCode.CONNECTION_CLOSED], // truncated
    ];
    for (const [accept, code] of cases) {
      const pending = connect({ ...fake.endpoint, privateName: 'alice' });
      const connection = await fake.accept();
      await connection.read(10);
      connection.write(hex('05 4e 55 4c 4c 20'));
      await connection.read(90);
      connection.end(hex(accept));
      await expect(pending).rejects.toMatchObject({ code });
    }
  });
  it('times out with COULD_NOT_CONNECT when the daemon never answers', async () => {
    const pending = connect({ ...fake.endpoint, privateName: 'alice', timeoutMs: 150 });
    await fake.accept();
    await expect(pending).rejects.toMatchObject({ code: ErrorCode.COULD_NOT_CONNECT });
    await expect(connect({ ...fake.endpoint, timeoutMs: -1 })).rejects.toMatchObject({ code: ErrorCode.ILLEGAL_TIME });
  });
});

describe('requests (§3.3)', () => {
  it('join, leave and multicast bytes match the C library', async () => {
    const { session, connection } = await open('tester', 'fake');
    session.join('foo');
    expect(await connection.readMessage()).toEqual(
      Buffer.concat([hex('80 00 01 80'), name32('#tester#fake'), hex('01 00 00 00 80 00 00 80 00 00 00 00'), name32('foo')]),
    );
    session.leave('foo');
    expect(await connection.readMessage()).toEqual(
      Buffer.concat([hex('80 00 02 80'), name32('#tester#fake'), hex('01 00 00 00 80 00 00 80 00 00 00 00'), name32('foo')]),
    );
    session.multicast('foo', 'hello\n', { service: 'safe', messType: 1 });
    expect(await connection.readMessage()).toEqual(
      Buffer.concat([
        hex('a0 00 00 80'),
        name32('#tester#fake'),
        hex('01 00 00 00 80 01 00 80 06 00 00 00'),
        name32('foo'),
        Buffer.from('hello\n'),
      ]),
    );
  });
  it('encodes each service, self-discard, negative mess types and multigroup lists', async () => {
    const { session, connection } = await open('tester', 'fake');
    const services = { unreliable: 0x01, reliable: 0x02, fifo: 0x04, causal: 0x08, agreed: 0x10, safe: 0x20 } as const;
    for (const [service, bit] of Object.entries(services)) {
      session.multicast(['g1', '#bob#fake'], new Uint8Array([1, 2, 3]), { service: service as keyof typeof services });
      const bytes = await connection.readMessage();
      expect(bytes.readUInt32LE(0)).toBe((bit | 0x80000080) >>> 0);
      expect(bytes.readInt32LE(36)).toBe(2);
      expect(bytes.subarray(48, 112)).toEqual(Buffer.concat([name32('g1'), name32('#bob#fake')]));
      expect(bytes.subarray(112)).toEqual(Buffer.from([1, 2, 3]));
    }
    session.multicast('g', '', { selfDiscard: true, messType: -1 });
    const bytes = await connection.readMessage();
    expect(bytes.subarray(0, 4)).toEqual(hex('d0 00 00 80')); // AGREED | SELF_DISCARD
    expect(bytes.subarray(40, 44)).toEqual(hex('80 ff ff 80'));
  });
  it('validates like the C library: ILLEGAL_GROUP, MESSAGE_TOO_LONG', async () => {
    const { session, connection } = await open('tester', 'fake');
    for (const group of ['', 'a b', 'x'.repeat(32), '#priv', 'tab\t', 'é']) {
      expect(() => session.join(group)).toThrow(InvalidRequestError);
      expect(() => session.leave(group)).toThrowError(expect.objectContaining({ code: ErrorCode.ILLEGAL_GROUP }));
    }
    expect(() => session.multicast('', 'x')).toThrowError(expect.objectContaining({ code: ErrorCode.ILLEGAL_GROUP }));
    const groups101 = Array.from({ length: 101 }, (_, i) => `g${i}`);
    expect(() => session.multicast(groups101, 'x')).toThrowError(
      expect.objectContaining({ code: ErrorCode.MESSAGE_TOO_LONG }),
    );
    expect(() => session.multicast('g', new Uint8Array(143_121))).toThrowError(
      expect.objectContaining({ code: ErrorCode.MESSAGE_TOO_LONG }),
    );
    expect(() => session.multicast(['a', 'b'], new Uint8Array(143_152 - 63))).toThrowError(
      expect.objectContaining({ codeName: 'MESSAGE_TOO_LONG' }),
    );
    expect(() => session.multicast('g', 'x', { messType: 40000 })).toThrow(RangeError);
    expect(() => session.multicast('g', 'x', { service: 'bogus' as 'safe' })).toThrowError(
      expect.objectContaining({ code: ErrorCode.ILLEGAL_SERVICE }),
    );
    session.multicast('g', new Uint8Array(143_120));
    const largest = await connection.readMessage();
    expect(largest.length).toBe(48 + 32 + 143_120);
    const hundred = Array.from({ length: 100 }, (_, i) => `g${i}`);
    session.multicast(hundred, 'x');
    expect((await connection.readMessage()).readInt32LE(36)).toBe(100);
  });
  it('disconnect sends KILL with the private group and closes (§3.3)', async () => {
    const { session, connection } = await open('tester', 'fake');
    const done = session.disconnect();
    expect(await connection.readMessage()).toEqual(
      Buffer.concat([hex('80 00 04 80'), name32('#tester#fake'), hex('01 00 00 00 80 00 00 80 00 00 00 00'), name32('#tester#fake')]),
    );
    await connection.eof();
    await done;
    expect(await session.closed()).toBeUndefined();
    expect(() => session.join('x')).toThrowError(expect.objectContaining({ code: ErrorCode.ILLEGAL_SESSION }));
  });
});

describe('deliveries from a little-endian daemon (§3.4, §5)', () => {
  it('parses the observed AGREED data delivery', async () => {
    const { connection, messages } = await open('alice');
    connection.write(observed.data);
    expect(await next(messages)).toMatchObject({
      kind: 'data',
      service: 'agreed',
      sender: '#alice#localhost',
      groups: ['grp1'],
      messType: 0x1234,
      endianMismatch: false,
      data: Buffer.from([0x68, 0x69]),
      selfDiscard: false,
    });
  });
  it('reports SAFE|SELF_DISCARD (0x60) and a big-endian sender hint as endianMismatch', async () => {
    const { connection, messages } = await open('alice');
    connection.write(daemonMessage({ type: 0x60, sender: '#bob#localhost', groups: ['g'], hint: hex('80 00 00 80'), data: hex('00') }));
    connection.write(daemonMessage({ type: 0x04, sender: '#java#localhost', groups: ['g'], hint: hex('00 00 07 00'), data: hex('') }));
    connection.write(daemonMessage({ type: 0x02, sender: '#java#localhost', groups: ['g'], hint: hex('00 ff fe 00'), data: hex('') }));
    expect(await next(messages)).toMatchObject({ kind: 'data', service: 'safe', selfDiscard: true, messType: 0 });
    expect(await next(messages)).toMatchObject({ service: 'fifo', messType: 7, endianMismatch: true });
    expect(await next(messages)).toMatchObject({ service: 'reliable', messType: -2, endianMismatch: true });
  });
  it('parses the observed join membership', async () => {
    const { connection, messages } = await open('alice');
    connection.write(observed.join);
    expect(await next(messages)).toEqual({
      kind: 'membership',
      group: 'grp1',
      cause: 'join',
      transitional: false,
      gid: { procId: 482711334, time: 0x6b09925d, index: 2 },
      members: ['#alice#localhost', '#bob#localhost'],
      vsSets: [['#bob#localhost']],
      mySet: ['#bob#localhost'],
      changedMember: '#bob#localhost',
      myIndex: 0,
    });
  });
  it('parses the observed merge body with two vs sets', async () => {
    const { connection, messages } = await open('al2', 'd1');
    connection.write(observed.merge);
    expect(await next(messages)).toEqual({
      kind: 'membership',
      group: 'K',
      cause: 'network',
      transitional: false,
      gid: { procId: 1552775919, time: 1795789630, index: 1 },
      members: ['#al2#d1', '#bo2#d2', '#cy2#d2'],
      vsSets: [['#bo2#d2', '#cy2#d2'], ['#al2#d1']],
      mySet: ['#al2#d1'],
      changedMember: null,
      myIndex: 0,
    });
  });
  it('parses leave, disconnect, transitional and self-leave', async () => {
    const { connection, messages } = await open('alice');
    const gid: [number, number, number] = [482711334, 1795789405, 3];
    connection.write(
      daemonMessage({ type: 0x1200, sender: 'grp1', groups: ['#alice#localhost'], hint: hex('80 00 00 80'), data: regularBody(gid, [['#bob#localhost']], 0) }),
    );
    connection.write(
      daemonMessage({ type: 0x1400, sender: 'grp2', groups: ['#carol#localhost', '#alice#localhost'], hint: hex('80 00 00 80'), data: regularBody(gid, [['#dave#localhost']], 0) }),
    );
    connection.write(daemonMessage({ type: 0x2000, sender: 'grp1', groups: [], hint: hex('80 00 00 80'), data: Buffer.concat(gid.map(le32)) }));
    connection.write(daemonMessage({ type: 0x0200, sender: 'grp1', groups: [], hint: hex('80 00 00 80'), data: hex('') }));
    expect(await next(messages)).toMatchObject({ cause: 'leave', changedMember: '#bob#localhost', members: ['#alice#localhost'], myIndex: 0 });
    expect(await next(messages)).toMatchObject({ group: 'grp2', cause: 'disconnect', changedMember: '#dave#localhost', myIndex: 1 });
    expect(await next(messages)).toEqual({
      kind: 'membership',
      group: 'grp1',
      cause: 'transition',
      transitional: true,
      gid: { procId: gid[0], time: gid[1], index: 3 },
      members: [],
      vsSets: [],
      mySet: [],
      changedMember: null,
      myIndex: -1,
    });
    expect(await next(messages)).toMatchObject({ cause: 'self-leave', group: 'grp1', members: [], myIndex: -1, transitional: false });
  });
  it('parses reject messages with old_type (§3.6)', async () => {
    const { connection, messages } = await open('alice');
    connection.write(
      daemonMessage({
        type: 0x00400000,
        sender: '#alice#localhost',
        groups: ['grp1', '#alice#localhost'],
        hint: hex('80 05 00 80'),
        data: Buffer.from('no'),
        oldType: 0x10,
      }),
    );
    connection.write(
      daemonMessage({ type: 0x00400000, sender: '#alice#localhost', groups: ['big', '#alice#localhost'], hint: hex('80 00 00 80'), data: hex(''), oldType: 0x100 }),
    );
    connection.write(observed.data); // the stream stays in sync after the 4 extra bytes
    expect(await next(messages)).toEqual({
      kind: 'reject',
      oldService: 'agreed',
      oldType: 0x10,
      sender: '#alice#localhost',
      groups: ['grp1', '#alice#localhost'],
      messType: 5,
      endianMismatch: false,
      data: Buffer.from("no"),
      selfDiscard: false,
    });
    expect(await next(messages)).toMatchObject({ kind: 'reject', oldService: 'join', oldType: 0x100, groups: ['big', '#alice#localhost'] });
    expect(await next(messages)).toMatchObject({ kind: 'data', messType: 0x1234 });
  });
});

describe('a big-endian daemon (§3.2, §5.4)', () => {
  it('swaps header and membership body integers but not the sender hint', async () => {
    const { connection, messages } = await open('al2', 'd1');
    connection.write(
      daemonMessage({ type: 0x10, sender: '#bo2#d2', groups: ['grp1'], hint: hex('80 34 12 80'), data: hex('68 69'), littleEndian: false }),
    );
    expect(connection.socket.bytesWritten).toBeGreaterThan(0);
    const body = regularBody([1552775919, 1795789630, 1], [['#bo2#d2', '#cy2#d2'], ['#al2#d1']], 0x44, false);
    connection.write(
      daemonMessage({ type: 0x1800, sender: 'K', groups: ['#al2#d1', '#bo2#d2', '#cy2#d2'], hint: hex('00 00 00 00'), data: body, littleEndian: false }),
    );
    connection.write(
      daemonMessage({ type: 0x2000, sender: 'K', groups: [], hint: hex('00 00 00 00'), data: Buffer.concat([1, 2, 3].map(be32)), littleEndian: false }),
    );
    connection.write(
      daemonMessage({ type: 0x00400000, sender: '#al2#d1', groups: ['x', '#al2#d1'], hint: hex('80 00 00 80'), data: hex('ff'), oldType: 0x20, littleEndian: false }),
    );
    expect(await next(messages)).toMatchObject({ kind: 'data', service: 'agreed', sender: '#bo2#d2', groups: ['grp1'], messType: 0x1234, endianMismatch: false });
    expect(await next(messages)).toMatchObject({
      cause: 'network',
      gid: { procId: 1552775919, time: 1795789630, index: 1 },
      vsSets: [['#bo2#d2', '#cy2#d2'], ['#al2#d1']],
      mySet: ['#al2#d1'],
      myIndex: 0,
    });
    expect(await next(messages)).toMatchObject({ cause: 'transition', gid: { procId: 1, time: 2, index: 3 } });
    expect(await next(messages)).toMatchObject({ kind: 'reject', oldService: 'safe', oldType: 0x20 });
  });
});

describe('stream handling', () => {
  it('parses a handshake and stream split at every byte', async () => {
    const pending = connect({ ...fake.endpoint, privateName: 'al2' });
    const connection = await fake.accept();
    await connection.read(8);
    await connection.writeByteByByte(hex('05 4e 55 4c 4c 20'));
    await connection.read(90);
    await connection.writeByteByByte(Buffer.concat([hex('01 05 00 01 07'), Buffer.from('#al2#d1')]));
    const session = await pending;
    sessions.push(session);
    const messages = session[Symbol.asyncIterator]();
    const reject = daemonMessage({ type: 0x00400000, sender: '#al2#d1', groups: ['x', '#al2#d1'], hint: hex('80 00 00 80'), data: hex('ff'), oldType: 0x10 });
    await connection.writeByteByByte(Buffer.concat([observed.data, observed.merge, reject, observed.join]));
    expect(await next(messages)).toMatchObject({ kind: 'data', data: Buffer.from([0x68, 0x69]) });
    expect(await next(messages)).toMatchObject({ kind: 'membership', cause: 'network', mySet: ['#al2#d1'] });
    expect(await next(messages)).toMatchObject({ kind: 'reject', data: Buffer.from([0xff]) });
    expect(await next(messages)).toMatchObject({ kind: 'membership', cause: 'join' });
  });
  it('delivers to event listeners, including messages that arrived before they were attached', async () => {
    const { session, connection } = await open('alice');
    connection.write(observed.join);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const seen: string[] = [];
    const done = new Promise<void>((resolve) => {
      session.on('membership', (message) => seen.push(`membership:${message.cause}`));
      session.on('message', (message) => {
        seen.push(`data:${message.service}`);
        resolve();
      });
    });
    connection.write(observed.data);
    await done;
    expect(seen).toEqual(['membership:join', 'data:agreed']);
  });
  it('pauses reading when the consumer lags, then delivers everything in order', async () => {
    const { session, connection, messages } = await open('alice', 'localhost', { queueMax: 8 });
    const count = 3000;
    const payload = Buffer.alloc(10_000, 7);
    for (let i = 0; i < count; i++) {
      connection.write(daemonMessage({ type: 0x10, sender: '#bob#localhost', groups: ['g'], hint: le32(((i & 0x7fff) << 8) | 0x80000080), data: payload }));
    }
    await new Promise((resolve) => setTimeout(resolve, 300));
    // 30 MB cannot all sit in kernel buffers: the fake's socket must still be holding data.
    expect(connection.socket.writableLength).toBeGreaterThan(0);
    for (let i = 0; i < count; i++) {
      const message = await next(messages);
      if (message.kind !== 'data' || message.messType !== (i & 0x7fff)) throw new Error(`message ${i} out of order`);
    }
    expect(session.isClosed).toBe(false);
  });
  it('closed() resolves to CONNECTION_CLOSED when the daemon closes; queued messages still arrive', async () => {
    const { session, connection, messages } = await open('alice');
    const closeEvent = new Promise<Error | undefined>((resolve) => session.on('close', resolve));
    connection.end(observed.data);
    await session.closed();
    expect(await next(messages)).toMatchObject({ kind: 'data' });
    expect((await messages.next()).done).toBe(true);
    const error = await session.closed();
    expect(error).toBeInstanceOf(ConnectionClosedError);
    expect(error).toMatchObject({ code: ErrorCode.CONNECTION_CLOSED });
    expect(await closeEvent).toBe(error);
    expect(() => session.multicast('g', 'x')).toThrowError(expect.objectContaining({ code: ErrorCode.NET_ERROR_ON_SESSION }));
  });
  it('closes the session with ILLEGAL_MESSAGE on a malformed header', async () => {
    const { session, connection } = await open('alice');
    connection.write(Buffer.concat([hex('90 00 00 00'), Buffer.alloc(44)])); // mixed endian marker
    expect(await session.closed()).toMatchObject({ name: 'IllegalMessageError', code: ErrorCode.ILLEGAL_MESSAGE });
  });
  it('closes the session with ILLEGAL_MESSAGE on a truncated membership body, after earlier messages', async () => {
    const { session, connection, messages } = await open('alice');
    const body = regularBody([1, 2, 3], [['#bob#localhost']], 0).subarray(0, 40); // vs set cut short
    connection.write(Buffer.concat([
      observed.data,
      daemonMessage({ type: 0x1100, sender: 'g', groups: ['#bob#localhost'], hint: hex('80 00 00 80'), data: body }),
    ]));
    expect(await next(messages)).toMatchObject({ kind: 'data' });
    expect((await messages.next()).done).toBe(true);
    expect(await session.closed()).toMatchObject({ code: ErrorCode.ILLEGAL_MESSAGE });
  });
});
