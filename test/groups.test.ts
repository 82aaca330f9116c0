// The pure group layer (src/groups/) fed a hand-made ring event stream.
import { describe, expect, it } from 'vitest';
import { GroupLayer, type GroupOutput, type LocalSessionRef } from '../src/groups/group-layer.js';
import { decodeRingMessage, encodeJoin, encodeKill, encodeLeave, isDataPayload } from '../src/groups/ring-message.js';
import { encodeGroupsReport } from '../src/groups/state-exchange.js';
import {
  ServiceType,
  decodeHeader,
  decodeMembershipBody,
  encodeHint,
  encodeMessage,
  readGroupNames,
} from '../src/protocol/index.js';
import type { RingEvent } from '../src/ring/types.js';
import { hex, name32 } from './helpers/bytes.js';


const D1 = 1552775919; // VIDs of "d1", "d2" (§8.7)
const D2 = 348480928;
const LOCALHOST = 482711334;
const MEMB = { procId: LOCALHOST, time: 0x6b09925d };

interface Harness {
  layer: GroupLayer;
  sessions: Map<string, LocalSessionRef>;
  out: GroupOutput[];
  feed(event: RingEvent): GroupOutput[];
  deliver(origin: number, payload: Uint8Array): GroupOutput[];
  /** A first multi-daemon configuration: this daemon's report and empty ones from the others complete the exchange. */
  form(membId: { procId: number; time: number }, members: number[]): void;
}

function harness(myVid: number, positions: Record<number, number>, local: Array<[string, number, boolean]> = []): Harness {
  const sessions = new Map<string, LocalSessionRef>();
  for (const [name, id, membership] of local) sessions.set(name, { id, membership });
  const layer = new GroupLayer({
    myVid,
    daemonPosition: (vid) => positions[vid],
    sessions: { byPrivateGroup: (name) => sessions.get(name) },
  });
  let seq = 0;
  const h: Harness = {
    layer,
    sessions,
    out: [],
    feed(event) {
      const out: GroupOutput[] = [];
      layer.apply(event, out);
      return out;
    },
    deliver(origin, payload) {
      return h.feed({ kind: 'deliver', seq: ++seq, origin, safe: false, payload });
    },
    form(membId, members) {
      const out = h.feed({ kind: 'regular', membId, members });
      for (const output of out) if (output.kind === 'submit') h.deliver(myVid, output.payload);
      for (const vid of members) {
        if (vid === myVid) continue;
        for (const payload of encodeGroupsReport({ membId, synced: [vid], groups: [] })) h.deliver(vid, payload);
      }
      expect(layer.state).toBe('gop');
    },
  };
  return h;
}

function writes(outputs: GroupOutput[]) {
  return outputs.filter((output): output is Extract<GroupOutput, { kind: 'write' }> => output.kind === 'write');
}

function parse(bytes: Uint8Array) {
  const header = decodeHeader(bytes);
  const groups = readGroupNames(bytes, 48, header.numGroups);
  const body = bytes.subarray(48 + 32 * header.numGroups);
  return { header, groups, body };
}

function data(sender: string, groups: string[], text: string, service: number = ServiceType.AGREED_MESS) {
  return encodeMessage({ type: service, sender, groups, hintRaw: encodeHint(7), data: Buffer.from(text) });
}

describe('ring messages', () => {
  it('round-trip control messages and recognise data frames', () => {
    expect(decodeRingMessage(encodeJoin('#a#d1', 'g'))).toEqual({ kind: 'join', member: '#a#d1', group: 'g' });
    expect(decodeRingMessage(encodeLeave('#a#d1', 'g'))).toEqual({ kind: 'leave', member: '#a#d1', group: 'g' });
    expect(decodeRingMessage(encodeKill('#a#d1'))).toEqual({ kind: 'kill', member: '#a#d1' });
    const frame = data('#a#d1', ['g'], 'x');
    expect(isDataPayload(frame)).toBe(true);
    expect(() => decodeRingMessage(Uint8Array.of(1, 9))).toThrow();
    expect(() => decodeRingMessage(Uint8Array.of(0x42))).toThrow();
  });
});

describe('joins, leaves and disconnects (§5.1–§5.5)', () => {
  it('builds the observed join message (§5.3) byte for byte', () => {
    const h = harness(LOCALHOST, { [LOCALHOST]: 0 }, [
      ['#alice#localhost', 1, true],
      ['#bob#localhost', 2, true],
    ]);
    h.feed({ kind: 'regular', membId: MEMB, members: [LOCALHOST] });
    h.deliver(LOCALHOST, encodeJoin('#alice#localhost', 'grp1'));
    const out = writes(h.deliver(LOCALHOST, encodeJoin('#bob#localhost', 'grp1')));
    expect(out).toHaveLength(1);
    expect(out[0].sessions).toEqual([1, 2]);
    const expected = Buffer.concat([
      hex('80 11 00 80'),
      name32('grp1'),
      hex('02 00 00 00 80 00 00 80 38 00 00 00'),
      name32('#alice#localhost'),
      name32('#bob#localhost'),
      hex('26 97 c5 1c 5d 92 09 6b 02 00 00 00  01 00 00 00  00 00 00 00  01 00 00 00'),
      name32('#bob#localhost'),
    ]);
    expect(Buffer.from(out[0].bytes)).toEqual(expected);
  });

  it('sends membership only to sessions with the flag, and ignores repeated joins and stray leaves', () => {
    const h = harness(LOCALHOST, { [LOCALHOST]: 0 }, [
      ['#a#localhost', 1, true],
      ['#b#localhost', 2, false],
    ]);
    h.feed({ kind: 'regular', membId: MEMB, members: [LOCALHOST] });
    expect(writes(h.deliver(LOCALHOST, encodeJoin('#b#localhost', 'g')))).toEqual([]);
    const joined = writes(h.deliver(LOCALHOST, encodeJoin('#a#localhost', 'g')));
    expect(joined.map((w) => w.sessions)).toEqual([[1]]);
    expect(h.deliver(LOCALHOST, encodeJoin('#a#localhost', 'g'))).toEqual([]);
    expect(h.deliver(LOCALHOST, encodeLeave('#a#localhost', 'other'))).toEqual([]);
    expect(h.layer.group('g')?.gid.index).toBe(2);
  });

  it('leave: self-leave to the leaver, REG|LEAVE to the rest; empty group discarded and recreated at index 1', () => {
    const h = harness(LOCALHOST, { [LOCALHOST]: 0 }, [
      ['#a#localhost', 1, true],
      ['#b#localhost', 2, true],
    ]);
    h.feed({ kind: 'regular', membId: MEMB, members: [LOCALHOST] });
    h.deliver(LOCALHOST, encodeJoin('#a#localhost', 'g'));
    h.deliver(LOCALHOST, encodeJoin('#b#localhost', 'g'));
    const out = writes(h.deliver(LOCALHOST, encodeLeave('#a#localhost', 'g')));
    expect(out).toHaveLength(2);
    const self = parse(out[0].bytes);
    expect(out[0].sessions).toEqual([1]);
    expect(self.header).toMatchObject({ type: ServiceType.CAUSED_BY_LEAVE, sender: 'g', numGroups: 0, dataLen: 0 });
    const others = parse(out[1].bytes);
    expect(out[1].sessions).toEqual([2]);
    expect(others.header.type).toBe(ServiceType.REG_MEMB_MESS | ServiceType.CAUSED_BY_LEAVE);
    expect(others.groups).toEqual(['#b#localhost']);
    const info = decodeMembershipBody(others.body, others.header.type);
    expect(info.gid.index).toBe(3);
    expect(info.changedMember).toBe('#a#localhost');
    h.deliver(LOCALHOST, encodeLeave('#b#localhost', 'g'));
    expect(h.layer.group('g')).toBeUndefined();
    h.deliver(LOCALHOST, encodeJoin('#a#localhost', 'g'));
    expect(h.layer.group('g')?.gid.index).toBe(1);
  });

  it('disconnect: one REG|DISCONNECT per group, in group-name order, then the kill is reported', () => {
    const h = harness(LOCALHOST, { [LOCALHOST]: 0 }, [
      ['#a#localhost', 1, true],
      ['#b#localhost', 2, true],
    ]);
    h.feed({ kind: 'regular', membId: MEMB, members: [LOCALHOST] });
    for (const group of ['zeta', 'Alpha', 'beta']) {
      h.deliver(LOCALHOST, encodeJoin('#a#localhost', group));
      h.deliver(LOCALHOST, encodeJoin('#b#localhost', group));
    }
    h.deliver(LOCALHOST, encodeJoin('#a#localhost', 'solo'));
    const out = h.deliver(LOCALHOST, encodeKill('#a#localhost'));
    const messages = writes(out).map((write) => parse(write.bytes));
    expect(messages.map((m) => m.header.sender)).toEqual(['Alpha', 'beta', 'zeta']);
    for (const message of messages) {
      expect(message.header.type).toBe(ServiceType.REG_MEMB_MESS | ServiceType.CAUSED_BY_DISCONNECT);
      expect(message.groups).toEqual(['#b#localhost']);
    }
    expect(out.at(-1)).toEqual({ kind: 'killed', member: '#a#localhost', sessionId: 1 });
    expect(h.layer.group('solo')).toBeUndefined();
  });
});

describe('many daemons', () => {
  it('orders members by configuration position, then bytewise name; unknown daemons last by VID', () => {
    // Configuration order: d1 then d2 (positions 0, 1); VID 7 is not configured.
    const h = harness(D2, { [D1]: 0, [D2]: 1 }, [['#b#d2', 5, true]]);
    h.form({ procId: D1, time: 100 }, [D1, D2, 7]);
    h.deliver(D2, encodeJoin('#b#d2', 'g'));
    h.deliver(7, encodeJoin('#a#x', 'g'));
    h.deliver(D1, encodeJoin('#z#d1', 'g'));
    h.deliver(D2, encodeJoin('#B#d2', 'g'));
    const out = writes(h.deliver(D1, encodeJoin('#a#d1', 'g')));
    const message = parse(out[0].bytes);
    expect(message.groups).toEqual(['#a#d1', '#z#d1', '#B#d2', '#b#d2', '#a#x']);
    const info = decodeMembershipBody(message.body, message.header.type);
    expect(info.gid).toEqual({ procId: D1, time: 100, index: 5 });
    // Only d2's local session gets it; remote members are never local targets.
    expect(out[0].sessions).toEqual([5]);
  });

  it('a private name at another daemon routes nowhere here; a kill from another daemon reports no session', () => {
    const h = harness(D1, { [D1]: 0, [D2]: 1 }, [['#a#d1', 1, true]]);
    h.form({ procId: D1, time: 1 }, [D1, D2]);
    expect(h.deliver(D2, data('#x#d2', ['#a#d2'], 'no'))).toEqual([]);
    expect(writes(h.deliver(D2, data('#x#d2', ['#a#d1'], 'yes')))[0].sessions).toEqual([1]);
    h.deliver(D2, encodeJoin('#x#d2', 'g'));
    h.deliver(D1, encodeJoin('#a#d1', 'g'));
    const out = h.deliver(D2, encodeKill('#x#d2'));
    expect(out.at(-1)).toEqual({ kind: 'killed', member: '#x#d2', sessionId: null });
  });

  it('subtractive configuration change: TRANSITION (old gid) then REG|NETWORK with one vs set', () => {
    const h = harness(D1, { [D1]: 0, [D2]: 1 }, [['#a#d1', 1, true]]);
    h.form({ procId: D1, time: 1 }, [D1, D2]);
    h.deliver(D1, encodeJoin('#a#d1', 'g'));
    h.deliver(D2, encodeJoin('#b#d2', 'g'));
    h.deliver(D1, encodeJoin('#a#d1', 'untouched'));
    const transition = writes(h.feed({ kind: 'transitional', membId: { procId: D1, time: 2 }, members: [D1] }));
    expect(transition).toHaveLength(1);
    const t = parse(transition[0].bytes);
    expect(t.header).toMatchObject({ type: ServiceType.TRANSITION_MESS, sender: 'g', numGroups: 0, dataLen: 12 });
    expect(decodeMembershipBody(t.body, t.header.type).gid).toEqual({ procId: D1, time: 1, index: 2 });
    const regular = writes(h.feed({ kind: 'regular', membId: { procId: D1, time: 3 }, members: [D1] }));
    expect(regular).toHaveLength(1);
    const r = parse(regular[0].bytes);
    expect(r.header.type).toBe(ServiceType.REG_MEMB_MESS | ServiceType.CAUSED_BY_NETWORK);
    expect(r.groups).toEqual(['#a#d1']);
    const info = decodeMembershipBody(r.body, r.header.type);
    expect(info.gid).toEqual({ procId: D1, time: 3, index: 1 });
    expect(info.vsSets).toEqual([['#a#d1']]);
    expect(info.localSetIndex).toBe(0);
    expect(h.layer.group('untouched')?.gid).toEqual({ procId: D1, time: 1, index: 1 });
  });
});

describe('data delivery (§7.2)', () => {
  const setup = () => {
    const h = harness(LOCALHOST, { [LOCALHOST]: 0 }, [
      ['#a#localhost', 1, true],
      ['#b#localhost', 2, true],
      ['#c#localhost', 3, false],
    ]);
    h.feed({ kind: 'regular', membId: MEMB, members: [LOCALHOST] });
    for (const member of ['#a#localhost', '#b#localhost']) {
      h.deliver(LOCALHOST, encodeJoin(member, 'g1'));
      h.deliver(LOCALHOST, encodeJoin(member, 'g2'));
    }
    return h;
  };

  it('multi-group with a private group: one copy per session, the frame passed through untouched', () => {
    const h = setup();
    const frame = data('#c#localhost', ['g1', 'g2', '#a#localhost', '#c#localhost', 'nobody'], 'hello');
    const out = writes(h.deliver(LOCALHOST, frame));
    expect(out).toHaveLength(1);
    expect(out[0].sessions.sort()).toEqual([1, 2, 3]);
    expect(out[0].bytes).toBe(frame);
    expect(h.layer.status().find((g) => g.name === 'g1')?.messages).toBe(1);
  });

  it('open groups: a non-member sender reaches members but not itself; SELF_DISCARD drops the sender', () => {
    const h = setup();
    expect(writes(h.deliver(LOCALHOST, data('#c#localhost', ['g1'], 'x')))[0].sessions).toEqual([1, 2]);
    expect(writes(h.deliver(LOCALHOST, data('#a#localhost', ['g1'], 'x')))[0].sessions).toEqual([1, 2]);
    const discard = writes(h.deliver(LOCALHOST, data('#a#localhost', ['g1'], 'x', ServiceType.AGREED_MESS | ServiceType.SELF_DISCARD)));
    expect(discard[0].sessions).toEqual([2]);
    // SELF_DISCARD only concerns the sender's own daemon's session: a remote origin keeps everyone.
    const remote = writes(h.deliver(99, data('#a#localhost', ['g1'], 'x', ServiceType.AGREED_MESS | ServiceType.SELF_DISCARD)));
    expect(remote[0].sessions).toEqual([1, 2]);
    expect(h.deliver(LOCALHOST, data('#a#localhost', ['#a#localhost'], 'x', ServiceType.FIFO_MESS | ServiceType.SELF_DISCARD))).toEqual([]);
  });

  it('drops undecodable payloads and counts them', () => {
    const h = setup();
    expect(h.deliver(LOCALHOST, Uint8Array.of(0x7f))).toEqual([]);
    expect(h.deliver(LOCALHOST, Uint8Array.of(0x80, 0, 0, 0x80))).toEqual([]);
    expect(h.layer.malformedPayloads).toBe(2);
  });
});
