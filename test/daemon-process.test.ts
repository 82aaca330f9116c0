// A real `tspread daemon` process, spoken to with raw bytes over TCP and the Unix socket.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import net from 'node:net';
import { existsSync } from 'node:fs';
import { ServiceType, decodeMembershipBody, frameData, frameGroups } from '../src/protocol/index.js';
import { freePort, soloConfig, startDaemon, type StartedDaemon } from './helpers/daemon.js';
import { RawClient } from './helpers/raw-client.js';
import { hex } from './helpers/bytes.js';

let PORT = 0;

describe('daemon process', () => {
  let daemon: StartedDaemon;
  beforeAll(async () => {
    PORT = await freePort();
    daemon = await startDaemon({ port: PORT });
  }, 30_000);
  afterAll(async () => {
    await daemon.stop();
  }, 30_000);

  it('does the §2.8 handshake byte for byte over TCP', async () => {
    const client = await RawClient.connect({ port: PORT });
    client.write(hex('05 00 01 01 05 61 6c 69 63 65'));
    expect(await client.read(6)).toEqual(hex('05 4e 55 4c 4c 20'));
    client.write(Buffer.concat([Buffer.from('NULL'), Buffer.alloc(86)]));
    expect(await client.read(21)).toEqual(Buffer.concat([hex('01 05 00 01 10'), Buffer.from('#alice#localhost')]));
    client.close();
  });

  it('accepts over the Unix socket, which is mode 0666', async () => {
    expect(existsSync(daemon.unixPath)).toBe(true);
    const client = await RawClient.join({ path: daemon.unixPath }, 'unixy');
    expect(client.privateGroup).toBe('#unixy#localhost');
    client.close();
  });

  it('rejects a duplicate name with FA and a bad name with FB', async () => {
    const first = await RawClient.join({ port: PORT }, 'dup');
    const second = await RawClient.connect({ port: PORT });
    second.write(hex('05 00 01 01 03 64 75 70'));
    expect(await second.readToEnd()).toEqual(hex('fa'));
    const third = await RawClient.connect({ port: PORT });
    third.write(Buffer.concat([hex('05 00 01 01 03'), Buffer.from('a b')]));
    expect(await third.readToEnd()).toEqual(hex('fb'));
    first.close();
  });

  it('runs join, data, leave and disconnect with exact membership messages', async () => {
    const alice = await RawClient.join({ port: PORT }, 'alice2');
    const bob = await RawClient.join({ path: daemon.unixPath }, 'bob2');
    alice.joinGroup('grp1');
    let message = await alice.message();
    expect(message.header.type).toBe(ServiceType.REG_MEMB_MESS | ServiceType.CAUSED_BY_JOIN);
    expect(message.header.sender).toBe('grp1');
    expect(frameGroups(message)).toEqual(['#alice2#localhost']);
    const first = decodeMembershipBody(frameData(message), message.header.type);
    expect(first.gid.index).toBe(1);
    expect(first.gid.procId).toBe(482711334);

    bob.joinGroup('grp1');
    for (const client of [alice, bob]) {
      message = await client.message();
      expect(frameGroups(message)).toEqual(['#alice2#localhost', '#bob2#localhost']);
      const body = frameData(message);
      expect(body.length).toBe(56);
      const info = decodeMembershipBody(body, message.header.type);
      expect(info.gid.index).toBe(2);
      expect(info.vsSets).toEqual([['#bob2#localhost']]);
    }

    alice.multicast(ServiceType.AGREED_MESS, ['grp1'], 'hi', 0x1234);
    for (const client of [alice, bob]) {
      message = await client.message();
      expect(Buffer.from(message.bytes)).toEqual(
        Buffer.concat([
          hex('90 00 00 80'),
          Buffer.from('#alice2#localhost'),
          Buffer.alloc(32 - 17),
          hex('01 00 00 00 80 34 12 80 02 00 00 00'),
          Buffer.from('grp1'),
          Buffer.alloc(28),
          Buffer.from('hi'),
        ]),
      );
    }

    bob.leaveGroup('grp1');
    message = await bob.message();
    expect(message.header.type).toBe(ServiceType.CAUSED_BY_LEAVE);
    expect(message.header.numGroups).toBe(0);
    expect(message.header.dataLen).toBe(0);
    message = await alice.message();
    expect(message.header.type).toBe(ServiceType.REG_MEMB_MESS | ServiceType.CAUSED_BY_LEAVE);
    expect(frameGroups(message)).toEqual(['#alice2#localhost']);

    bob.joinGroup('grp1');
    await alice.message();
    await bob.message();
    bob.disconnect();
    message = await alice.message();
    expect(message.header.type).toBe(ServiceType.REG_MEMB_MESS | ServiceType.CAUSED_BY_DISCONNECT);
    expect(decodeMembershipBody(frameData(message), message.header.type).changedMember).toBe('#bob2#localhost');
    alice.close();
  });

  it('does not let a silent client stall another handshake', async () => {
    const silent = await RawClient.connect({ port: PORT });
    const partial = await RawClient.connect({ port: PORT });
    partial.write(hex('05 00'));
    const started = Date.now();
    const quick = await RawClient.join({ port: PORT }, 'quick');
    expect(Date.now() - started).toBeLessThan(1000);
    quick.close();
    silent.close();
    partial.close();
  });

  it('kills a session that sends an invalid header; others are unaffected', async () => {
    const good = await RawClient.join({ port: PORT }, 'good');
    const bad = await RawClient.join({ port: PORT }, 'bad');
    good.joinGroup('g2');
    await good.message();
    bad.multicast(ServiceType.AGREED_MESS | ServiceType.SAFE_MESS, ['g2'], 'x');
    await bad.readToEnd();
    good.multicast(ServiceType.AGREED_MESS, ['g2'], 'still here');
    const message = await good.message();
    expect(Buffer.from(frameData(message)).toString()).toBe('still here');
    good.close();
  });
});

describe('daemon process limits', () => {
  it('cuts a reader that stops reading once MaxSessionMessages are queued', async () => {
    const port = await freePort();
    const daemon = await startDaemon({
      port,
      config: soloConfig(port, ['MaxSessionMessages = 5']),
      args: ['--slow-reader-stall-ms', '300'],
    });
    try {
      const sender = await RawClient.join({ port }, 'sender');
      const sleeper = await RawClient.join({ port }, 'sleeper');
      const watcher = await RawClient.join({ port }, 'watcher');
      sleeper.joinGroup('flood');
      await sleeper.message();
      watcher.joinGroup('flood');
      await watcher.message();
      sleeper.socket.pause();
      const payload = Buffer.alloc(100_000, 7);
      for (let i = 0; i < 60; i++) sender.multicast(ServiceType.AGREED_MESS, ['flood'], payload);
      let disconnect: string | null = null;
      let data = 0;
      while (disconnect === null) {
        const message = await watcher.message(10_000);
        if (message.header.type & ServiceType.CAUSED_BY_DISCONNECT) {
          disconnect = decodeMembershipBody(frameData(message), message.header.type).changedMember;
        } else data += 1;
      }
      expect(data).toBeGreaterThan(4);
      expect(disconnect).toBe('#sleeper#localhost');
      await daemon.waitForOutput('cutting slow reader');
      sender.close();
      watcher.close();
      sleeper.close();
    } finally {
      await daemon.stop();
    }
  }, 30_000);

  it('never cuts a reader that keeps reading, however slowly, during a flood', async () => {
    const port = await freePort();
    const daemon = await startDaemon({ port, config: soloConfig(port, ['MaxSessionMessages = 200']) });
    try {
      const sender = await RawClient.join({ port }, 'sender');
      const reader = await RawClient.join({ path: daemon.unixPath }, 'reader');
      reader.joinGroup('flood');
      await reader.message();
      const total = 3000;
      const payload = Buffer.alloc(1000, 1);
      const sending = (async () => {
        for (let i = 0; i < total; i++) {
          sender.multicast(ServiceType.AGREED_MESS, ['flood'], payload, i & 0x7fff);
          if (i % 200 === 199) await new Promise((resolve) => setImmediate(resolve));
        }
      })();
      // Read in bursts with pauses, so the reader is often slower than the sender.
      for (let i = 0; i < total; i++) {
        const message = await reader.message(10_000);
        expect(message.header.type).toBe(ServiceType.AGREED_MESS);
        if (i % 500 === 499) {
          reader.socket.pause();
          await new Promise((resolve) => setTimeout(resolve, 150));
          reader.socket.resume();
        }
      }
      await sending;
      expect(reader.isEnded()).toBe(false);
      expect(daemon.output()).not.toContain('cutting slow reader');
      sender.close();
      reader.close();
    } finally {
      await daemon.stop();
    }
  }, 30_000);

  it('closes a silent client silently and a partial name with FB at the deadline', async () => {
    const port = await freePort();
    const daemon = await startDaemon({ port, args: ['--handshake-timeout-ms', '300'] });
    try {
      const silent = await RawClient.connect({ port });
      const partial = await RawClient.connect({ path: daemon.unixPath });
      partial.write(Buffer.from([5, 0, 1, 1, 3, 0x61, 0x62]));
      expect(await silent.readToEnd(3000)).toEqual(Buffer.alloc(0));
      expect(await partial.readToEnd(3000)).toEqual(Buffer.from([0xfb]));
    } finally {
      await daemon.stop();
    }
  });

  it('exits cleanly on SIGTERM and removes the Unix socket', async () => {
    const port = await freePort();
    const daemon = await startDaemon({ port });
    expect(existsSync(daemon.unixPath)).toBe(true);
    const code = await daemon.stop();
    expect(code).toBe(0);
    expect(existsSync(daemon.unixPath)).toBe(false);
    await expect(
      new Promise((resolve, reject) => net.connect({ port, host: '127.0.0.1' }).on('connect', resolve).on('error', reject)),
    ).rejects.toThrow();
  });
});
