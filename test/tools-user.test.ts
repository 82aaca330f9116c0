// `tspread user` driven through stdin like a script: against the fake daemon
// (exact request bytes, spuser-style printout) and, two at a time, against a
// real daemon process.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FakeDaemon, hex, name32 } from './fake-daemon/fake-daemon.js';
import { ensureBuilt, ToolProcess } from './fake-daemon/processes.js';
import { soloConfig, startDaemon, type StartedDaemon } from './helpers/daemon.js';
import { le32 } from './helpers/bytes.js';


beforeAll(() => ensureBuilt(), 120_000);

describe('tspread user against the fake daemon', () => {
  let fake: FakeDaemon;
  const processes: ToolProcess[] = [];
  beforeAll(async () => {
    fake = await FakeDaemon.tcp();
  });
  afterAll(async () => {
    await fake.close();
  });
  afterEach(() => {
    for (const process of processes.splice(0)) process.kill();
  });

  it('sends j/s/m/b/l as spuser does, prints deliveries, and quits on EOF', async () => {
    const user = new ToolProcess(['user', '-u', 'tester', '-s', fake.endpoint.daemon]);
    processes.push(user);
    const connection = await fake.accept();
    const { request } = await connection.acceptSession('fake');
    expect(request).toEqual(hex('05 00 01 01 06 74 65 73 74 65 72'));
    await user.waitFor('User: connected to');
    expect(user.stdout).toBe(`User: connected to ${fake.endpoint.daemon} with private group #tester#fake\n`);

    user.send('j foo');
    expect(await connection.readMessage()).toEqual(
      Buffer.concat([hex('80 00 01 80'), name32('#tester#fake'), hex('01 00 00 00 80 00 00 80 00 00 00 00'), name32('foo')]),
    );
    user.send('s foo', 'hello');
    expect(await connection.readMessage()).toEqual(
      Buffer.concat([hex('a0 00 00 80'), name32('#tester#fake'), hex('01 00 00 00 80 01 00 80 06 00 00 00'), name32('foo'), Buffer.from('hello\n')]),
    );
    user.send('m foo bar', 'line 1', 'line 2', '');
    const multi = await connection.readMessage();
    expect(multi.readInt32LE(36)).toBe(2);
    expect(multi.subarray(48 + 64).toString()).toBe('line 1\nline 2\n');
    user.send('b foo', '20');
    for (let i = 1; i <= 10; i++) {
      const burst = await connection.readMessage();
      expect(burst.subarray(0, 4)).toEqual(hex('84 00 00 80')); // FIFO
      expect(burst.subarray(40, 44)).toEqual(hex('80 02 00 80')); // mess_type 2
      expect(burst.readInt32LE(44)).toBe(20);
      expect(burst.subarray(80).toString('latin1').replace(/\0+$/, '')).toBe(`mess num ${i + 2} `);
    }
    await user.waitFor('sent message 10 (total 12)');

    // Deliveries, printed like spuser.
    const join = Buffer.concat([
      hex('80 11 00 80'),
      name32('foo'),
      hex('02 00 00 00 80 00 00 80 38 00 00 00'),
      name32('#bob#fake'),
      name32('#tester#fake'),
      hex('26 97 c5 1c 5d 92 09 6b 02 00 00 00 01 00 00 00 00 00 00 00 01 00 00 00'),
      name32('#bob#fake'),
    ]);
    const data = Buffer.concat([hex('a0 00 00 80'), name32('#bob#fake'), hex('01 00 00 00 80 01 00 80 06 00 00 00'), name32('foo'), Buffer.from('hello\n')]);
    const merge = Buffer.concat([
      hex('80 18 00 80'),
      name32('foo'),
      hex('02 00 00 00 80 00 00 80 5c 00 00 00'),
      name32('#bob#fake'),
      name32('#tester#fake'),
      hex('ef 7a 8d 5c 3e 93 09 6b 01 00 00 00 02 00 00 00 24 00 00 00'),
      le32(1),
      name32('#bob#fake'),
      le32(1),
      name32('#tester#fake'),
    ]);
    connection.write(Buffer.concat([join, data, merge]));
    await user.waitFor('OTHER VS set 0 has 1 members');
    await user.waitFor('LOCAL VS set 1 has 1 members:\n\t#tester#fake');
    expect(user.stdout).toContain(
      [
        '============================',
        'Received REGULAR membership for group foo with 2 members, where I am member 1:',
        '\t#bob#fake',
        '\t#tester#fake',
        'grp id is 482711334 1795789405 2',
        'Due to the JOIN of #bob#fake',
      ].join('\n'),
    );
    expect(user.stdout).toContain('received SAFE message from #bob#fake, of type 1, (endian 0) to 1 groups \n(6 bytes): hello\n');
    expect(user.stdout).toContain('grp id is 1552775919 1795789630 1\nDue to NETWORK change with 2 VS sets');
    expect(user.stdout).not.toContain('User>');

    user.send('l foo', 'x');
    expect((await connection.readMessage()).subarray(0, 4)).toEqual(hex('80 00 02 80'));
    await user.waitFor('Unknown command');
    user.child.stdin.end();
    const kill = await connection.readMessage();
    expect(kill.subarray(0, 4)).toEqual(hex('80 00 04 80'));
    expect(await user.exited).toBe(0);
    expect(user.stdout.endsWith('\nBye.\n')).toBe(true);
  });

  it('prints the reject code and exits 1 when the daemon refuses the name', async () => {
    const user = new ToolProcess(['user', '-u', 'dup', '-s', fake.endpoint.daemon]);
    processes.push(user);
    const connection = await fake.accept();
    await connection.read(8);
    connection.end(hex('fa'));
    expect(await user.exited).toBe(1);
    expect(user.stdout).toContain('SP_error: (-6) REJECT_NOT_UNIQUE');
  });

  it('reports a lost connection and exits 1', async () => {
    const user = new ToolProcess(['user', '-r', '-s', fake.endpoint.daemon]);
    processes.push(user);
    const connection = await fake.accept();
    const { request } = await connection.acceptSession('fake');
    expect(request).toEqual(hex('05 00 01 01 00'));
    await user.waitFor('with private group #r1234-5#fake');
    connection.end();
    expect(await user.exited).toBe(1);
    expect(user.stdout).toContain('CONNECTION_CLOSED');
  });
});

describe('two tspread user processes on a real daemon', () => {
  const port = 24920;
  let daemon: StartedDaemon;
  const processes: ToolProcess[] = [];
  beforeAll(async () => {
    daemon = await startDaemon({ port, config: soloConfig(port) });
  }, 30_000);
  afterAll(async () => {
    for (const process of processes.splice(0)) process.kill();
    await daemon?.stop();
  });

  it('join, chat, and see each other join and leave', async () => {
    const socketDir = daemon.unixPath.replace(/\/[^/]+$/, '');
    const alice = new ToolProcess(['user', '-u', 'alice', '-s', String(port), '--socket-dir', socketDir]);
    const bob = new ToolProcess(['user', '-u', 'bob', '-s', `${port}@127.0.0.1`]);
    processes.push(alice, bob);
    await alice.waitFor('with private group #alice#localhost');
    await bob.waitFor('with private group #bob#localhost');

    alice.send('j chat');
    await alice.waitFor('Due to the JOIN of #alice#localhost');
    bob.send('j chat');
    const bobJoin = (index: number) =>
      `Received REGULAR membership for group chat with 2 members, where I am member ${index}:\n\t#alice#localhost\n\t#bob#localhost\n`;
    await alice.waitFor(bobJoin(0));
    await bob.waitFor(bobJoin(1));
    await alice.waitFor('Due to the JOIN of #bob#localhost');

    bob.send('s chat', 'hi alice');
    const line = 'received SAFE message from #bob#localhost, of type 1, (endian 0) to 1 groups \n(9 bytes): hi alice\n';
    await alice.waitFor(line);
    await bob.waitFor(line);
    alice.send('m chat', 'hello', 'bob', '');
    await bob.waitFor('(10 bytes): hello\nbob\n');

    bob.send('l chat');
    await bob.waitFor('received membership message that left group chat');
    await alice.waitFor('Due to the LEAVE of #bob#localhost');
    bob.send('j chat');
    await alice.waitFor(/Due to the JOIN of #bob#localhost[\s\S]*Due to the JOIN of #bob#localhost/);
    bob.child.stdin.end(); // EOF = quit
    expect(await bob.exited).toBe(0);
    await alice.waitFor('Due to the DISCONNECT of #bob#localhost');
    alice.send('q');
    expect(await alice.exited).toBe(0);
    expect(alice.stdout).toMatch(/grp id is 482711334 \d+ 1\n/);
    expect(alice.stdout).not.toContain('User>');
  });
});
