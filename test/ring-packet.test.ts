/** Daemon-to-daemon packet codec: round trips, golden bytes, typed errors, fuzzing; wrap-safe seq helpers. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RTR_ITEMS_MAX } from '../src/ring/limits.js';
import {
  DATA_HEADER_BYTES,
  DataFlag,
  DataPacketWriter,
  decodePacket,
  encodeCommit,
  encodeData,
  encodeHello,
  encodeJoin,
  encodeHurry,
  encodeToken,
  encodeTokenAck,
  FragmentFlag,
  type Packet,
  PacketDecodeError,
  type PacketHeader,
  PacketType,
  packetLength,
  peekSender,
  peekType,
  retransmissionOf,
  TOKEN_HEADER_BYTES,
  type TokenFields,
} from '../src/ring/packet.js';
import { seqAdd, seqDiff, seqGt, seqLt, seqLte, seqMax, seqMin } from '../src/ring/seq.js';

const header: PacketHeader = { sender: 0x0a0b0c0d, membId: { procId: 0x11223344, time: 1_700_000_000 }, configHash: 0xdeadbeef };

function decodeOk(bytes: Uint8Array): Packet {
  const r = decodePacket(bytes);
  if (!r.ok) throw new Error(`unexpected decode error ${r.error.message}`);
  return r.packet;
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

describe('token packets', () => {
  const token: TokenFields = { hop: 7, seq: 0xfffffffe, aru: 0xfffffff0, aruSetter: 42, flowControl: 60, round: 3, flags: 1, rtr: [0xfffffff1, 5] };

  it('encode to golden bytes', () => {
    const bytes = encodeToken(header, token);
    expect(bytes.length).toBe(TOKEN_HEADER_BYTES + 8);
    expect(hex(bytes)).toBe(
      '7453' + '01' + '02' + '0a0b0c0d' + '11223344' + '6553f100' + 'deadbeef' +
        '00000007' + 'fffffffe' + 'fffffff0' + '0000002a' + '0000003c' + '00000003' + '0001' + '0002' + 'fffffff1' + '00000005',
    );
  });

  it('round-trip', () => {
    const p = decodeOk(encodeToken(header, token));
    expect(p).toEqual({ type: PacketType.TOKEN, ...header, ...token });
  });

  it('reject a wrong rtr count, unknown flags and too many requests', () => {
    const bytes = encodeToken(header, token);
    const short = bytes.subarray(0, bytes.length - 4);
    expect(decodePacket(short)).toMatchObject({ ok: false, error: { code: 'length' } });
    const flagged = bytes.slice();
    flagged[45] = 0x80;
    expect(decodePacket(flagged)).toMatchObject({ ok: false, error: { code: 'flags' } });
    const many = bytes.slice();
    new DataView(many.buffer).setUint16(46, RTR_ITEMS_MAX + 1);
    expect(decodePacket(many)).toMatchObject({ ok: false, error: { code: 'rtr' } });
    expect(() => encodeToken(header, { ...token, rtr: new Array(RTR_ITEMS_MAX + 1).fill(1) })).toThrow(RangeError);
  });
});

describe('small packets', () => {
  it('hello, hurry and token ack round-trip', () => {
    expect(decodeOk(encodeHello(header))).toEqual({ type: PacketType.HELLO, ...header, flags: 0 });
    expect(decodeOk(encodeHurry(header, 99))).toEqual({ type: PacketType.HURRY, ...header, lastHop: 99 });
    expect(decodeOk(encodeTokenAck(header, 0xffffffff))).toEqual({ type: PacketType.TOKEN_ACK, ...header, hop: 0xffffffff });
    expect(hex(encodeHurry(header, 1))).toBe('7453010' + '4' + '0a0b0c0d11223344' + '6553f100' + 'deadbeef' + '00000001');
  });

  it('peek type and sender without decoding', () => {
    const bytes = encodeHello(header);
    expect(peekType(bytes)).toBe(PacketType.HELLO);
    expect(peekSender(bytes)).toBe(header.sender);
    expect(peekType(bytes.subarray(0, 10))).toBeNull();
    expect(peekSender(new Uint8Array(24))).toBeNull();
  });
});

describe('data packets', () => {
  const fragments = [
    { flags: FragmentFlag.FIRST | FragmentFlag.LAST, payload: new Uint8Array([1, 2, 3]) },
    { flags: FragmentFlag.FIRST | FragmentFlag.LAST | FragmentFlag.SAFE, payload: new Uint8Array(0) },
    { flags: FragmentFlag.FIRST, payload: new Uint8Array(100).fill(7) },
  ];

  it('round-trip several fragments, with payloads as views of the datagram', () => {
    const bytes = encodeData(header, { seq: 0xffffffff, origin: 9, round: 4, fragments });
    expect(bytes.length).toBe(DATA_HEADER_BYTES + 3 * 4 + 3 + 0 + 100);
    const p = decodeOk(bytes);
    if (p.type !== PacketType.DATA) throw new Error('not data');
    expect(p.seq).toBe(0xffffffff);
    expect(p.origin).toBe(9);
    expect(p.round).toBe(4);
    expect(p.flags).toBe(0);
    expect(p.fragments).toEqual(fragments);
    expect(p.fragments[0].payload.buffer).toBe(bytes.buffer);
  });

  it('golden bytes of a one-fragment packet', () => {
    const bytes = encodeData(header, { seq: 1, origin: 2, round: 3, fragments: [{ flags: 3, payload: new Uint8Array([0xab]) }] });
    expect(hex(bytes)).toBe('74530101' + '0a0b0c0d' + '11223344' + '6553f100' + 'deadbeef' + '00000001' + '00000002' + '00000003' + '0001' + '0000' + '03' + '00' + '0001' + 'ab');
  });

  it('retransmission copies are re-stamped and flagged, the original untouched', () => {
    const bytes = encodeData(header, { seq: 5, origin: 9, round: 1, fragments });
    const copy = retransmissionOf(bytes, 77);
    const p = decodeOk(copy);
    expect(p.sender).toBe(77);
    expect(p.type === PacketType.DATA && p.flags).toBe(DataFlag.RETRANSMISSION);
    expect(decodeOk(bytes).sender).toBe(header.sender);
  });

  it('typed errors for truncation, trailing bytes, bad flags and empty packets', () => {
    const bytes = encodeData(header, { seq: 5, origin: 9, round: 1, fragments });
    const cases: [Uint8Array, string][] = [
      [bytes.subarray(0, bytes.length - 1), 'fragment'],
      [bytes.subarray(0, DATA_HEADER_BYTES + 2), 'fragment'],
      [Uint8Array.from([...bytes, 0]), 'length'],
      [bytes.subarray(0, 30), 'short'],
    ];
    const badFlags = bytes.slice();
    badFlags[DATA_HEADER_BYTES] = 0x10;
    cases.push([badFlags, 'flags']);
    const noFragments = bytes.slice(0, DATA_HEADER_BYTES);
    noFragments[32] = 0;
    noFragments[33] = 0;
    cases.push([noFragments, 'fragment']);
    const badMagic = bytes.slice();
    badMagic[0] = 0;
    cases.push([badMagic, 'magic']);
    const badVersion = bytes.slice();
    badVersion[2] = 9;
    cases.push([badVersion, 'version']);
    const badType = bytes.slice();
    badType[3] = 200;
    cases.push([badType, 'type']);
    for (const [input, code] of cases) {
      const r = decodePacket(input);
      expect(r.ok).toBe(false);
      if (!r.ok) {
        expect(r.error).toBeInstanceOf(PacketDecodeError);
        expect(r.error.code).toBe(code);
      }
    }
  });

  it('the writer packs until full and refuses what does not fit', () => {
    const w = new DataPacketWriter(256);
    w.begin(header, 1, 2, 3);
    expect(w.room()).toBe(256 - DATA_HEADER_BYTES - 4);
    w.append(3, new Uint8Array(100), 0, 100);
    expect(w.room()).toBe(256 - DATA_HEADER_BYTES - 4 - 104);
    expect(() => w.append(3, new Uint8Array(200), 0, 200)).toThrow(RangeError);
    w.append(3, new Uint8Array(w.room()), 0, w.room());
    expect(w.room()).toBe(-1);
    const bytes = w.finish();
    expect(bytes.length).toBe(256);
    expect(decodeOk(bytes).type).toBe(PacketType.DATA);
    w.begin(header, 1, 2, 3);
    expect(() => w.finish()).toThrow(RangeError);
    expect(() => new DataPacketWriter(10)).toThrow(RangeError);
  });
});

describe('fuzzing: decode never throws', () => {
  it('random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 2000 }), (bytes) => {
        const r = decodePacket(bytes);
        if (!r.ok) expect(r.error).toBeInstanceOf(PacketDecodeError);
      }),
      { numRuns: 3000 },
    );
  });

  it('random bytes behind a valid header', () => {
    fc.assert(
      fc.property(fc.constantFrom(1, 2, 3, 4, 5, 6), fc.uint8Array({ minLength: 0, maxLength: 600 }), (type, body) => {
        const bytes = new Uint8Array(20 + body.length);
        bytes.set([0x74, 0x53, 1, type]);
        bytes.set(body, 20);
        const r = decodePacket(bytes);
        if (!r.ok) expect(r.error).toBeInstanceOf(PacketDecodeError);
      }),
      { numRuns: 3000 },
    );
  });

  it('mutated valid packets: still no throw, and what decodes re-encodes to the same bytes', () => {
    const valid = [
      encodeData(header, { seq: 5, origin: 9, round: 1, fragments: [{ flags: 3, payload: new Uint8Array(40).fill(1) }, { flags: 1, payload: new Uint8Array(9) }] }),
      encodeToken(header, { hop: 1, seq: 2, aru: 1, aruSetter: 0, flowControl: 0, round: 0, flags: 0, rtr: [1, 2, 3] }),
      encodeHurry(header, 3),
    ];
    fc.assert(
      fc.property(
        fc.constantFrom(...valid),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
        fc.nat(),
        (original, flips, cut) => {
          const bytes = original.slice(0, original.length - (cut % 4 === 0 ? cut % original.length : 0));
          for (const [at, value] of flips) if (bytes.length > 0) bytes[at % bytes.length] = value;
          const r = decodePacket(bytes);
          if (!r.ok) return;
          const p = r.packet;
          if (p.type === PacketType.DATA) {
            const again = encodeData(p, p);
            new DataView(again.buffer).setUint16(34, p.flags);
            expect(hex(again)).toBe(hex(bytes));
          } else if (p.type === PacketType.TOKEN) {
            expect(hex(encodeToken(p, p))).toBe(hex(bytes));
          }
        },
      ),
      { numRuns: 3000 },
    );
  });
});

describe('wrap-safe sequence numbers', () => {
  it('order across 2^32', () => {
    const top = 0xffffffff;
    expect(seqAdd(top, 1)).toBe(0);
    expect(seqAdd(top, 5)).toBe(4);
    expect(seqLt(top, 0)).toBe(true);
    expect(seqLt(0, top)).toBe(false);
    expect(seqGt(3, top - 3)).toBe(true);
    expect(seqLte(top, top)).toBe(true);
    expect(seqDiff(2, top - 1)).toBe(4);
    expect(seqMin(top, 1)).toBe(top);
    expect(seqMax(top, 1)).toBe(1);
  });

  it('agree with integer order for nearby values', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: -1_000_000, max: 1_000_000 }), (a, d) => {
        const b = seqAdd(a, d);
        expect(seqLt(a, b)).toBe(d > 0);
        expect(seqDiff(b, a)).toBe(d);
      }),
    );
  });
});

describe('writer output', () => {
  it('finishPacket equals what decodePacket makes of the same bytes', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 7 }), fc.uint8Array({ maxLength: 300 })), { minLength: 1, maxLength: 8 }), (frags) => {
        const w = new DataPacketWriter(4000);
        w.begin(header, 10, 11, 12);
        for (const [flags, payload] of frags) w.append(flags, payload, 0, payload.length);
        const built = w.finishPacket();
        expect(decodeOk(built.bytes)).toEqual(built);
      }),
      { numRuns: 300 },
    );
  });
});

describe('packetLength (splitting a GRO read)', () => {
  const none = { procId: 0, time: 0 };
  const samples: Uint8Array[] = [
    encodeData(header, { seq: 1, origin: 2, round: 3, fragments: [{ flags: FragmentFlag.FIRST | FragmentFlag.LAST, payload: new Uint8Array(1000) }] }),
    encodeData(header, { seq: 2, origin: 2, round: 3, fragments: [{ flags: FragmentFlag.FIRST, payload: new Uint8Array(7) }, { flags: 0, payload: new Uint8Array(0) }] }),
    encodeToken(header, { hop: 1, seq: 2, aru: 2, aruSetter: 0, flowControl: 0, round: 1, flags: 0, rtr: [5, 6, 7] }),
    encodeHello(header),
    encodeHurry(header, 9),
    encodeTokenAck(header, 9),
    encodeJoin(header, { flags: 0, incarnation: 1, attempt: 1, proc: [1, 2, 3], fail: [4] }),
    encodeCommit(header, { hop: 1, rotation: 1, entries: [{ vid: 1, incarnation: 1, filled: true, oldRing: none, aru: 0, highest: 0, safe: 0 }] }),
  ];

  it('is the encoded length of every packet type, also inside a larger buffer', () => {
    for (const packet of samples) {
      expect(packetLength(packet, 0)).toBe(packet.length);
      const padded = new Uint8Array(packet.length + 5);
      padded.set(packet, 3);
      expect(packetLength(padded, 3)).toBe(packet.length);
    }
  });

  it('walks back-to-back packets to their ends', () => {
    const joined = Buffer.concat(samples);
    const found: number[] = [];
    for (let offset = 0; offset < joined.length; offset += found.at(-1)!) found.push(packetLength(joined, offset)!);
    expect(found).toEqual(samples.map((packet) => packet.length));
  });

  it('is null for a cut header, a cut packet, or bytes that are not ours', () => {
    expect(packetLength(samples[0].subarray(0, 30), 0)).toBeNull();
    expect(packetLength(samples[0].subarray(0, 500), 0)).toBeNull();
    expect(packetLength(samples[2].subarray(0, samples[2].length - 1), 0)).toBeNull();
    expect(packetLength(new Uint8Array(40), 0)).toBeNull();
    expect(packetLength(samples[3], 10)).toBeNull();
  });

  it('never throws and never points past the buffer', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.nat(200), (bytes, offset) => {
        const at = Math.min(offset, bytes.length);
        const length = packetLength(bytes, at);
        if (length !== null) expect(at + length).toBeLessThanOrEqual(bytes.length);
      }),
    );
  });
});
