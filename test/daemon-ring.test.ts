// Two real daemons (127.0.0.1 and 127.0.0.2) on one ring: the group layer across daemons.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ServiceType, decodeMembershipBody, frameData, frameGroups } from '../src/protocol/index.js';
import { freePort, startDaemon, type StartedDaemon } from './helpers/daemon.js';
import { RawClient } from './helpers/raw-client.js';

const ringConfig = (segmentPort: number) =>
  [`Spread_Segment 127.0.0.255:${segmentPort} {`, '\td1 127.0.0.1', '\td2 127.0.0.2', '}', ''].join('\n');

describe('two daemons on one ring', () => {
  let d1: StartedDaemon;
  let d2: StartedDaemon;
  beforeAll(async () => {
    const config = ringConfig(await freePort({ udp: ['127.0.0.1', '127.0.0.2'] }));
    const [port1, port2] = [await freePort(), await freePort()];
    [d1, d2] = await Promise.all([
      startDaemon({ port: port1, config, args: ['-n', 'd1'] }),
      startDaemon({ port: port2, config, args: ['-n', 'd2'] }),
    ]);
  }, 30_000);
  afterAll(async () => {
    await Promise.all([d1?.stop(), d2?.stop()]);
  }, 30_000);

  it('orders members across daemons and routes data and private messages', async () => {
    const bob = await RawClient.join({ port: d2.port }, 'bob');
    const al = await RawClient.join({ port: d1.port }, 'al');
    bob.joinGroup('shared');
    let message = await bob.message(10_000);
    expect(frameGroups(message)).toEqual(['#bob#d2']);
    al.joinGroup('shared');
    for (const client of [al, bob]) {
      message = await client.message(10_000);
      expect(message.header.type).toBe(ServiceType.REG_MEMB_MESS | ServiceType.CAUSED_BY_JOIN);
      // d1 comes first in the configuration, whatever the join order.
      expect(frameGroups(message)).toEqual(['#al#d1', '#bob#d2']);
      const info = decodeMembershipBody(frameData(message), message.header.type);
      expect(info.gid.index).toBe(2);
      expect(info.gid.procId).toBe(1552775919); // VID of d1, the ring's leader
    }
    bob.multicast(ServiceType.SAFE_MESS, ['shared'], 'across');
    for (const client of [al, bob]) {
      message = await client.message(10_000);
      expect(Buffer.from(frameData(message)).toString()).toBe('across');
      expect(message.header.sender).toBe('#bob#d2');
    }
    al.multicast(ServiceType.AGREED_MESS, ['#bob#d2'], 'private');
    message = await bob.message(10_000);
    expect(Buffer.from(frameData(message)).toString()).toBe('private');
    bob.disconnect();
    message = await al.message(10_000);
    expect(message.header.type).toBe(ServiceType.REG_MEMB_MESS | ServiceType.CAUSED_BY_DISCONNECT);
    expect(frameGroups(message)).toEqual(['#al#d1']);
    al.close();
  }, 30_000);
});
