// The daemon handshake state machine (src/daemon/handshake.ts) against §2.3–§2.9, byte for byte.
import { describe, expect, it } from 'vitest';
import { parseAccessIp, accessIpAllows, type PeerAddress } from '../src/daemon/access-ip.js';
import { DaemonHandshake, type HandshakePolicy, type HandshakeStep } from '../src/daemon/handshake.js';
import { hex } from './helpers/bytes.js';

const NULL_CHOICE = Buffer.concat([Buffer.from('NULL'), Buffer.alloc(86)]);
const choice = (...names: string[]) => {
  const out = Buffer.alloc(90);
  names.forEach((name, slot) => out.write(name, slot * 30, 'latin1'));
  return out;
};
const TCP: PeerAddress = { kind: 'tcp', address: '127.0.0.1' };

function machine(
  options: { policy?: Partial<HandshakePolicy>; taken?: string[]; randoms?: number[]; peer?: PeerAddress; connection?: number } = {},
) {
  const randoms = [...(options.randoms ?? [0.5])];
  const policy: HandshakePolicy = {
    daemonName: 'localhost',
    allowedAuthMethods: ['NULL'],
    requiredAuthMethods: [],
    accessIp: null,
    ...options.policy,
  };
  const taken = new Set(options.taken ?? []);
  return new DaemonHandshake(
    policy,
    { isNameTaken: (name) => taken.has(name), random: () => randoms.shift() ?? 0.25 },
    options.connection ?? 11,
    options.peer ?? TCP,
  );
}

const bytesOf = (step: HandshakeStep) => Buffer.concat(step.output.map((part) => Buffer.from(part)));

describe('§2.8 worked handshake', () => {
  it('produces the observed bytes', () => {
    const handshake = machine();
    const first = handshake.push(hex('05 00 01 01 05 61 6c 69 63 65'));
    expect(bytesOf(first)).toEqual(hex('05 4e 55 4c 4c 20'));
    expect(first.outcome.kind).toBe('pending');
    expect(handshake.name).toBe('alice');
    const second = handshake.push(NULL_CHOICE);
    expect(bytesOf(second)).toEqual(Buffer.concat([hex('01 05 00 01 10'), Buffer.from('#alice#localhost')]));
    expect(second.outcome).toMatchObject({
      kind: 'accepted',
      session: { privateName: 'alice', privateGroup: '#alice#localhost', membership: true, priority: 0, libraryVersion: 50001 },
    });
  });

  it('accepts the request split byte by byte', () => {
    const handshake = machine();
    const request = hex('05 00 01 01 05 61 6c 69 63 65');
    const output: Buffer[] = [];
    for (const byte of request) {
      const step = handshake.push(Uint8Array.of(byte));
      output.push(bytesOf(step));
      expect(step.outcome.kind).toBe('pending');
    }
    expect(Buffer.concat(output)).toEqual(hex('05 4e 55 4c 4c 20'));
    let last: HandshakeStep | null = null;
    for (const byte of NULL_CHOICE) last = handshake.push(Uint8Array.of(byte));
    expect(last?.outcome.kind).toBe('accepted');
  });

  it('accepts an auth choice pipelined after the name, and hands over bytes beyond it', () => {
    const handshake = machine();
    const extra = hex('90 00 00 80');
    const step = handshake.push(Buffer.concat([hex('05 00 01 01 05 61 6c 69 63 65'), NULL_CHOICE, extra]));
    expect(bytesOf(step)).toEqual(
      Buffer.concat([hex('05 4e 55 4c 4c 20 01 05 00 01 10'), Buffer.from('#alice#localhost')]),
    );
    expect(step.outcome.kind).toBe('accepted');
    if (step.outcome.kind === 'accepted') expect(Buffer.from(step.outcome.leftover)).toEqual(extra);
  });
});

describe('version branches (§2.9)', () => {
  it('3.14: no patch byte read, no auth exchange, no patch byte in the accept', () => {
    const step = machine().push(Buffer.concat([hex('03 0e 01 03'), Buffer.from('o14')]));
    expect(bytesOf(step)).toEqual(Buffer.concat([hex('01 05 00 0e'), Buffer.from('#o14#localhost')]));
    expect(step.outcome.kind).toBe('accepted');
  });
  it('3.15.0: patch byte both ways, accepted at once without auth list', () => {
    const step = machine().push(Buffer.concat([hex('03 0f 00 01 03'), Buffer.from('o15')]));
    expect(bytesOf(step)).toEqual(Buffer.concat([hex('01 05 00 01 0e'), Buffer.from('#o15#localhost')]));
  });
  it('3.15 with only IP enabled runs IP at once', () => {
    const denied = machine({ policy: { allowedAuthMethods: ['IP'] } }).push(Buffer.concat([hex('03 0f 00 01 03'), Buffer.from('o15')]));
    expect(bytesOf(denied)).toEqual(hex('f7'));
    const rules = parseAccessIp('127.0.0.1\n');
    const allowed = machine({ policy: { allowedAuthMethods: ['IP'], accessIp: rules } }).push(
      Buffer.concat([hex('03 0f 00 01 03'), Buffer.from('o15')]),
    );
    expect(allowed.outcome.kind).toBe('accepted');
  });
  it('3.15 with nothing usable enabled gets REJECT_AUTH', () => {
    const step = machine({ policy: { allowedAuthMethods: [] } }).push(Buffer.concat([hex('03 0f 00 01 03'), Buffer.from('o15')]));
    expect(bytesOf(step)).toEqual(hex('f7'));
  });
  it('3.0.0 gets REJECT_VERSION; 3.1.0 is accepted', () => {
    const old = machine().push(hex('03 00 00 01 00'));
    expect(bytesOf(old)).toEqual(hex('f9'));
    expect(old.outcome).toMatchObject({ kind: 'rejected', code: -7 });
    // 3.1 sends no patch byte (3*10000+1*100 <= 31400).
    expect(machine().push(hex('03 01 01 00')).outcome.kind).toBe('accepted');
  });
  it('reads version bytes as signed: 0x85 major is negative → REJECT_VERSION', () => {
    expect(bytesOf(machine().push(hex('85 00 01 01 00')))).toEqual(hex('f9'));
  });
});

describe('flags and names (§2.3)', () => {
  it('signed flags 0x81 turn membership off; 0x11 keeps it and sets priority 1', () => {
    const off = machine().push(Buffer.concat([hex('05 00 01 81 01 61'), NULL_CHOICE]));
    expect(off.outcome).toMatchObject({ kind: 'accepted', session: { membership: false, priority: -7 } });
    const on = machine().push(Buffer.concat([hex('05 00 01 11 01 61'), NULL_CHOICE]));
    expect(on.outcome).toMatchObject({ kind: 'accepted', session: { membership: true, priority: 1 } });
  });
  it('L = 11 and L < 0 give REJECT_ILLEGAL_NAME', () => {
    expect(bytesOf(machine().push(hex('05 00 01 01 0b')))).toEqual(hex('fb'));
    expect(bytesOf(machine().push(hex('05 00 01 01 ff')))).toEqual(hex('fb'));
  });
  it('illegal name bytes give FB; "$" and "~" are legal', () => {
    expect(bytesOf(machine().push(Buffer.concat([hex('05 00 01 01 03'), Buffer.from('a b')])))).toEqual(hex('fb'));
    expect(bytesOf(machine().push(Buffer.concat([hex('05 00 01 01 03'), Buffer.from('a#b')])))).toEqual(hex('fb'));
    expect(bytesOf(machine().push(Buffer.concat([hex('05 00 01 01 03'), Buffer.from('a\x7fb')])))).toEqual(hex('fb'));
    expect(machine().push(Buffer.concat([hex('05 00 01 01 02'), Buffer.from('$~'), NULL_CHOICE])).outcome.kind).toBe('accepted');
  });
  it('a taken name gives REJECT_NOT_UNIQUE', () => {
    const step = machine({ taken: ['dup'] }).push(Buffer.concat([hex('05 00 01 01 03'), Buffer.from('dup')]));
    expect(bytesOf(step)).toEqual(hex('fa'));
    expect(step.outcome).toMatchObject({ kind: 'rejected', code: -6 });
  });
  it('L = 0 generates r<rnd>-<n>, at most 9 characters, regenerated until unique', () => {
    const step = machine({ randoms: [0.9642, 0.1], taken: ['r9641-11'], connection: 11 }).push(
      Buffer.concat([hex('05 00 01 01 00'), NULL_CHOICE]),
    );
    expect(step.outcome).toMatchObject({ kind: 'accepted', session: { privateName: 'r999-11' } });
    const long = machine({ randoms: [0.99989], connection: 123456 }).push(Buffer.concat([hex('05 00 01 01 00'), NULL_CHOICE]));
    expect(long.outcome).toMatchObject({ kind: 'accepted', session: { privateName: 'r9997-123' } });
  });
});

describe('deadlines (the silent-client rules)', () => {
  it('nothing, or only part of the request: silent close', () => {
    expect(machine().expire()).toMatchObject({ output: [], outcome: { kind: 'closed' } });
    const partial = machine();
    partial.push(hex('05 00 01'));
    expect(partial.expire()).toMatchObject({ output: [], outcome: { kind: 'closed' } });
  });
  it('no name bytes yet: silent close; part of the name: FB (as Spread on L=3 with 2 bytes)', () => {
    const none = machine();
    none.push(hex('05 00 01 01 03'));
    expect(none.expire().outcome.kind).toBe('closed');
    const part = machine();
    expect(part.push(hex('05 00 01 01 03 61 62')).outcome.kind).toBe('pending');
    expect(bytesOf(part.expire())).toEqual(hex('fb'));
  });
  it('auth choice missing or short at the deadline: REJECT_AUTH', () => {
    const waiting = machine();
    waiting.push(hex('05 00 01 01 01 61'));
    waiting.push(Buffer.from('NUL'));
    expect(bytesOf(waiting.expire())).toEqual(hex('f7'));
  });
});

describe('authentication (§2.4, §2.5)', () => {
  const request = hex('05 00 01 01 01 61');
  it('an empty allowed list sends length 0 then REJECT_AUTH', () => {
    const step = machine({ policy: { allowedAuthMethods: [] } }).push(request);
    expect(bytesOf(step)).toEqual(hex('00 f7'));
  });
  it('lists the enabled methods in registration order', () => {
    const step = machine({ policy: { allowedAuthMethods: ['NULL', 'IP'] } }).push(request);
    expect(bytesOf(step)).toEqual(Buffer.concat([hex('08'), Buffer.from('NULL IP ')]));
  });
  it('denies an empty request, an unknown method and a disabled one', () => {
    for (const bad of [choice(), choice('FOO'), choice('IP')]) {
      const handshake = machine();
      handshake.push(request);
      expect(bytesOf(handshake.push(bad))).toEqual(hex('f7'));
    }
  });
  it('an empty request is denied even when methods are required', () => {
    const handshake = machine({ policy: { requiredAuthMethods: ['NULL'] } });
    handshake.push(request);
    expect(bytesOf(handshake.push(choice()))).toEqual(hex('f7'));
  });
  it('runs required methods after the requested ones (IP required, no rules → denied)', () => {
    const handshake = machine({ policy: { requiredAuthMethods: ['IP'] } });
    expect(bytesOf(handshake.push(request))).toEqual(hex('05 4e 55 4c 4c 20'));
    expect(bytesOf(handshake.push(NULL_CHOICE))).toEqual(hex('f7'));
    const allowed = machine({ policy: { requiredAuthMethods: ['IP'], accessIp: parseAccessIp('local') } });
    allowed.push(request);
    expect(allowed.push(NULL_CHOICE).outcome.kind).toBe('accepted');
  });
  it('IP method: rules, unix keyword, IPv6 denied, mapped IPv4 matched', () => {
    const rules = parseAccessIp('# comment\n10.1.0.0/16\nlocal  # loopback\nunix\nbogus/99\n');
    expect(rules.errors).toHaveLength(1);
    expect(accessIpAllows(rules, { kind: 'tcp', address: '10.1.200.3' })).toBe(true);
    expect(accessIpAllows(rules, { kind: 'tcp', address: '10.2.0.1' })).toBe(false);
    expect(accessIpAllows(rules, { kind: 'tcp', address: '127.9.9.9' })).toBe(true);
    expect(accessIpAllows(rules, { kind: 'tcp', address: '::ffff:10.1.0.1' })).toBe(true);
    expect(accessIpAllows(rules, { kind: 'tcp', address: '::1' })).toBe(false);
    expect(accessIpAllows(rules, { kind: 'unix' })).toBe(true);
    expect(accessIpAllows(parseAccessIp('local'), { kind: 'unix' })).toBe(false);
    expect(accessIpAllows(null, TCP)).toBe(false);
    const handshake = machine({ policy: { allowedAuthMethods: ['NULL', 'IP'], accessIp: rules }, peer: { kind: 'unix' } });
    handshake.push(request);
    expect(handshake.push(choice('IP')).outcome.kind).toBe('accepted');
  });
  it('a 3-slot choice never reads past 90 bytes', () => {
    const handshake = machine();
    handshake.push(request);
    expect(bytesOf(handshake.push(choice('NULL', 'NULL', 'NULL')))).toEqual(
      Buffer.concat([hex('01 05 00 01 0c'), Buffer.from('#a#localhost')]),
    );
  });
});
