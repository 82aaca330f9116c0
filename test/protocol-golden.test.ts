// Byte-exact checks of the codecs against the examples observed on the wire (spread-protocol.md).
import { describe, expect, it } from 'vitest';
import {
  Framer,
  ServiceType,
  decodeHeader,
  decodeHint,
  decodeMembershipBody,
  encodeAccept,
  encodeAuthChoice,
  encodeAuthList,
  encodeConnectRequest,
  encodeControlRequest,
  encodeHint,
  encodeMessage,
  encodeRegularBody,
  frameData,
  frameGroups,
} from '../src/protocol/index.js';
import { hex, name32 } from './helpers/bytes.js';


describe('handshake (§2.2, §2.8)', () => {
  it('encodes the C spuser connect request', () => {
    const bytes = encodeConnectRequest({
      version: { major: 5, minor: 0, patch: 1 },
      membership: true,
      priority: 0,
      privateName: 'tester',
    });
    expect(Buffer.from(bytes)).toEqual(hex('05 00 01 01 06 74 65 73 74 65 72'));
  });
  it('omits the patch byte for library 3.14', () => {
    const bytes = encodeConnectRequest({
      version: { major: 3, minor: 14, patch: 0 },
      membership: true,
      priority: 0,
      privateName: 'o14',
    });
    expect(Buffer.from(bytes)).toEqual(hex('03 0e 01 03 6f 31 34'));
  });
  it('encodes the auth list, the choice and the accept', () => {
    expect(Buffer.from(encodeAuthList(['NULL']))).toEqual(hex('05 4e 55 4c 4c 20'));
    expect(Buffer.from(encodeAuthChoice(['NULL']))).toEqual(Buffer.concat([hex('4e554c4c'), Buffer.alloc(86)]));
    const accept = encodeAccept(
      { daemonVersion: { major: 5, minor: 0, patch: 1 }, privateGroup: '#alice#localhost' },
      true,
    );
    expect(Buffer.from(accept)).toEqual(
      Buffer.concat([hex('01 05 00 01 10'), Buffer.from('#alice#localhost')]),
    );
    const old = encodeAccept({ daemonVersion: { major: 5, minor: 0, patch: 1 }, privateGroup: '#o14#localhost' }, false);
    expect(Buffer.from(old)).toEqual(Buffer.concat([hex('01 05 00 0e'), Buffer.from('#o14#localhost')]));
  });
});

describe('requests and deliveries (§3.3, §3.4)', () => {
  it('encodes the observed little-endian join', () => {
    const bytes = encodeControlRequest('join', '#tester#fake', 'foo');
    const expected = Buffer.concat([
      hex('80 00 01 80'),
      name32('#tester#fake'),
      hex('01 00 00 00 80 00 00 80 00 00 00 00'),
      name32('foo'),
    ]);
    expect(Buffer.from(bytes)).toEqual(expected);
  });
  it('encodes a SAFE multicast type and hint', () => {
    const bytes = encodeMessage({
      type: ServiceType.SAFE_MESS,
      sender: '#tester#fake',
      groups: ['foo'],
      hintRaw: encodeHint(1),
      data: Buffer.from('hello\n'),
    });
    expect(Buffer.from(bytes.subarray(0, 4))).toEqual(hex('a0 00 00 80'));
    expect(Buffer.from(bytes.subarray(40, 44))).toEqual(hex('80 01 00 80'));
  });
  it('decodes the observed AGREED delivery', () => {
    const wire = Buffer.concat([
      hex('90 00 00 80'),
      name32('#alice#localhost'),
      hex('01 00 00 00 80 34 12 80 02 00 00 00'),
      name32('grp1'),
      Buffer.from('hi'),
    ]);
    const framer = new Framer({ groupsMax: 100, dataBytesMax: 200_000, bodyBytesMax: 200_000, rejectCarriesOldType: true });
    const frames: ReturnType<Framer['push']> = [];
    for (const byte of wire) frames.push(...framer.push(Uint8Array.of(byte)));
    expect(frames).toHaveLength(1);
    const [frame] = frames;
    expect(frame.header.type).toBe(ServiceType.AGREED_MESS);
    expect(frame.header.sender).toBe('#alice#localhost');
    expect(frameGroups(frame)).toEqual(['grp1']);
    expect(Buffer.from(frameData(frame)).toString()).toBe('hi');
    expect(decodeHint(frame.header.hintRaw)).toEqual({ messType: 0x1234, endianMismatch: false });
  });
  it('reads big-endian headers and a big-endian hint', () => {
    const bytes = encodeMessage(
      { type: ServiceType.FIFO_MESS, sender: '#j#d', groups: ['g'], hintRaw: encodeHint(7, false), data: Buffer.from('x') },
      false,
    );
    expect(Buffer.from(bytes.subarray(40, 44))).toEqual(hex('00 00 07 00'));
    const header = decodeHeader(bytes);
    expect(header.littleEndian).toBe(false);
    expect(header.type).toBe(ServiceType.FIFO_MESS);
    expect(header.numGroups).toBe(1);
    expect(header.dataLen).toBe(1);
    expect(decodeHint(header.hintRaw)).toEqual({ messType: 7, endianMismatch: true });
  });
});

describe('membership bodies (§5.3)', () => {
  it('encodes the observed lightweight join body', () => {
    const body = encodeRegularBody({ procId: 0x1cc59726, time: 0x6b09925d, index: 2 }, [['#bob#localhost']], 0);
    expect(Buffer.from(body)).toEqual(
      Buffer.concat([hex('26 97 c5 1c 5d 92 09 6b 02 00 00 00 01 00 00 00 00 00 00 00 01 00 00 00'), name32('#bob#localhost')]),
    );
    expect(body.length).toBe(56);
  });
  it('encodes and decodes the observed merge body', () => {
    const gid = { procId: 1552775919, time: 1795789630, index: 1 };
    const body = encodeRegularBody(gid, [['#bo2#d2', '#cy2#d2'], ['#al2#d1']], 1);
    expect(body.length).toBe(124);
    expect(Buffer.from(body.subarray(0, 20))).toEqual(hex('ef 7a 8d 5c 3e 93 09 6b 01 00 00 00 02 00 00 00 44 00 00 00'));
    const info = decodeMembershipBody(body, ServiceType.REG_MEMB_MESS | ServiceType.CAUSED_BY_NETWORK);
    expect(info.gid).toEqual(gid);
    expect(info.vsSets).toEqual([['#bo2#d2', '#cy2#d2'], ['#al2#d1']]);
    expect(info.localSetIndex).toBe(1);
    expect(info.changedMember).toBeNull();
  });
});
