// Key agreement as a pure state machine, driven through seeded EVS view schedules
// (joins, leaves, crashes, partitions, merges, early roster deadlines, old-view
// stragglers), and its message checks one by one.
import { createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { KeyAgreement, SignatureCache, type ViewInput } from '../src/apps/secure-group/index.js';
import { blindedKey, parentSecret } from '../src/apps/secure-group/x25519.js';
import { openEnvelope, Sealer } from '../src/apps/secure-group/envelope.js';
import { ed25519FromSeed, ViewSchedule, type ScheduleOptions } from './helpers/secure-group-views.js';
import { Prng } from './sim/prng.js';

const SEEDS = Number(process.env.SECURE_GROUP_SEEDS ?? 40);

function checkViews(schedule: ViewSchedule, strict: boolean): void {
  const keys = new Set<string>();
  for (const [tag, { key, holders }] of schedule.established) {
    // Keys differ across views.
    expect(keys.has(key.key.toString('hex')), `key of ${tag} reused`).toBe(false);
    keys.add(key.key.toString('hex'));
    const members = schedule.viewMembers.get(tag)!;
    const participants = key.participants.map((participant) => participant.member);
    for (const participant of participants) expect(members).toContain(participant);
    // No one outside the view's roster holds its key.
    for (const holder of holders) expect(participants).toContain(holder);
  }
  for (const member of schedule.online()) {
    for (const key of member.keys.values()) expect(key.participants.some((p) => p.member === member.id)).toBe(true);
    if (!member.trusted) expect(member.keys.size).toBe(0);
  }
  for (const component of schedule.components.values()) {
    const tag = schedule.tagOf(component);
    const record = schedule.established.get(tag);
    const trusted = component.members.map((id) => schedule.members.get(id)!).filter((member) => member.trusted);
    // Every trusted member of the view that was not left out of its roster holds the one key.
    for (const member of trusted) {
      if (strict || !member.excludedFrom.has(tag)) {
        expect(member.keys.get(tag)?.fingerprint, `${member.id} in ${tag}`).toBe(record?.key.fingerprint);
      }
    }
    if (record !== undefined && strict) {
      expect(new Set(record.key.participants.map((p) => p.member))).toEqual(new Set(trusted.map((member) => member.id)));
    }
  }
}

function runSchedule(options: ScheduleOptions): ViewSchedule {
  const schedule = new ViewSchedule(options);
  for (let action = 0; action < options.actions; action++) {
    schedule.act();
    const prng = schedule.prng;
    if (prng.chance(0.15)) schedule.deadlineAtRandom();
    if (prng.chance(0.3)) {
      schedule.settle();
      checkViews(schedule, false);
    } else schedule.deliver(prng.int(0, 60));
  }
  // Heal: one more view everywhere with no early deadline, then every trusted member must hold its view's key.
  while (schedule.components.size > 1) schedule.act();
  if (schedule.online().length === 0) schedule.act();
  schedule.settle();
  checkViews(schedule, false);
  const last = [...schedule.components.values()][0];
  if (last !== undefined && !schedule.online().some((member) => member.excludedFrom.has(schedule.tagOf(last)))) checkViews(schedule, true);
  return schedule;
}

describe('secure-group key agreement on seeded view schedules', () => {
  it(`keeps one key per view, held only by its roster, across ${SEEDS} seeds`, () => {
    const totals = new Map<string, number>();
    let views = 0;
    let keys = 0;
    for (let seed = 1; seed <= SEEDS; seed++) {
      const draw = new Prng(seed ^ 0x5ec6);
      const options: ScheduleOptions = {
        seed,
        persons: draw.int(3, 8),
        actions: draw.int(10, 40),
        untrusted: draw.chance(0.4) ? 1 : 0,
        silent: draw.chance(0.4) ? 1 : 0,
      };
      let schedule: ViewSchedule;
      try {
        schedule = runSchedule(options);
      } catch (error) {
        throw new Error(`SEED=${seed} ${JSON.stringify(options)}: ${(error as Error).message}`, { cause: error });
      }
      for (const [action, count] of schedule.actionsDone) totals.set(action, (totals.get(action) ?? 0) + count);
      for (const [reason, count] of schedule.rejected) totals.set(`rejected:${reason}`, (totals.get(`rejected:${reason}`) ?? 0) + count);
      views += schedule.views;
      keys += schedule.established.size;
    }
    // The schedules did exercise every kind of change and the old-view rejection.
    for (const action of ['join', 'leave', 'crash', 'partition', 'merge']) expect(totals.get(action) ?? 0).toBeGreaterThan(0);
    expect(totals.get('rejected:stale-view') ?? 0).toBeGreaterThan(0);
    expect(totals.get('rejected:untrusted') ?? 0).toBeGreaterThan(0);
    expect(keys).toBeGreaterThan(views / 4);
  }, 120_000);
});

describe('secure-group agreement messages', () => {
  const trustedKeys = [1, 2, 3].map((n) => ed25519FromSeed(new Uint8Array(32).fill(n)));
  const trust = new Map(trustedKeys.map((key, index) => [`m${index}`, key]));
  const members = ['#a#d1', '#b#d1', '#c#d2'];
  const view: ViewInput = { group: 'g', gid: { procId: 7, time: 100, index: 1 }, members };
  const leaf = (n: number) => new Uint8Array(32).fill(40 + n);
  const make = () => members.map((member, index) => new KeyAgreement(member, { name: `m${index}`, privateKey: trustedKeys[index] }, trust));

  it('rejects old-view replays, forged senders, tampered signatures, untrusted keys and junk', () => {
    const [a, b] = make();
    const oldLeaf = b.startView(view, leaf(1)).send[0];
    a.startView({ ...view, gid: { ...view.gid, index: 2 } }, leaf(0));
    expect(a.receive(members[1], oldLeaf).rejected).toEqual(['stale-view']);

    const [c, d] = make();
    const newView = { ...view, gid: { ...view.gid, index: 3 } };
    c.startView(newView, leaf(0));
    const dLeaf = d.startView(newView, leaf(1)).send[0];
    expect(c.receive(members[2], dLeaf).rejected).toEqual(['sender-mismatch']);
    const tampered = Buffer.from(dLeaf);
    tampered[tampered.length - 1] ^= 1;
    expect(c.receive(members[1], tampered).rejected).toEqual(['bad-signature']);
    expect(c.receive(members[1], dLeaf).rejected).toEqual(['duplicate-leaf']); // heard once already (badly)

    const stranger = generateKeyPairSync('ed25519').privateKey;
    const [e] = make();
    const mallory = new KeyAgreement(members[1], { name: 'm1', privateKey: stranger }, trust);
    e.startView(newView, leaf(0));
    expect(e.receive(members[1], mallory.startView(newView, leaf(1)).send[0]).rejected).toEqual(['bad-signature']);

    const prng = new Prng(99);
    for (let n = 0; n < 2000; n++) {
      const junk = new Uint8Array(prng.int(0, 200));
      prng.fill(junk);
      expect(e.receive(members[2], junk).rejected.length).toBe(1);
    }
  });

  it('agrees on one key among three members and a different one in the next view', () => {
    const agreements = make();
    const run = (input: ViewInput, salt: number) => {
      const log: { sender: string; bytes: Buffer }[] = [];
      const keys: string[] = [];
      agreements.forEach((agreement, index) => {
        for (const bytes of agreement.startView(input, leaf(index + salt)).send) log.push({ sender: members[index], bytes });
      });
      for (let next = 0; next < log.length; next++) {
        agreements.forEach((agreement) => {
          const output = agreement.receive(log[next].sender, log[next].bytes);
          expect(output.rejected).toEqual([]);
          for (const bytes of output.send) log.push({ sender: agreement.me, bytes });
          if (output.established) keys.push(output.established.key.toString('hex'));
        });
      }
      expect(keys).toHaveLength(3);
      expect(new Set(keys).size).toBe(1);
      return keys[0];
    };
    const first = run(view, 0);
    const second = run({ ...view, gid: { ...view.gid, index: 2 } }, 0); // same leaves, new group id
    const third = run({ ...view, gid: { ...view.gid, index: 3 } }, 10);
    expect(new Set([first, second, third]).size).toBe(3);
  });
});

describe('secure-group X25519 helpers', () => {
  it('match keys imported the standard way (PKCS#8 / SPKI DER) and refuse a low-order point', () => {
    const prng = new Prng(7);
    for (let n = 0; n < 20; n++) {
      const secret = Buffer.alloc(32);
      const other = Buffer.alloc(32);
      prng.fill(secret);
      prng.fill(other);
      const der = createPrivateKey({ key: Buffer.concat([Buffer.from('302e020100300506032b656e04220420', 'hex'), secret]), format: 'der', type: 'pkcs8' });
      const spki = createPublicKey(der).export({ format: 'der', type: 'spki' });
      expect(blindedKey(secret).equals(spki.subarray(12))).toBe(true);
      const otherDer = createPrivateKey({ key: Buffer.concat([Buffer.from('302e020100300506032b656e04220420', 'hex'), other]), format: 'der', type: 'pkcs8' });
      const shared = diffieHellman({ privateKey: der, publicKey: createPublicKey(otherDer) });
      expect(shared.length).toBe(32);
      expect(parentSecret(secret, blindedKey(other)).equals(parentSecret(other, blindedKey(secret)))).toBe(true);
    }
    expect(() => parentSecret(Buffer.alloc(32, 1), Buffer.alloc(32))).toThrow();
  });
});

describe('secure-group envelopes', () => {
  it('number each sender\'s messages, bind sender and view, and refuse any change', () => {
    const key = {
      viewTag: 'ab'.repeat(16),
      gid: { procId: 1, time: 2, index: 3 },
      participants: [
        { member: '#a#d1', identity: 'alice' },
        { member: '#b#d2', identity: 'bob' },
      ],
      key: Buffer.alloc(32, 7),
      fingerprint: 'f',
    };
    const sealer = new Sealer('g', key, '#b#d2');
    const first = sealer.seal(Buffer.from('one'));
    const second = sealer.seal(Buffer.from('two'));
    const opened = [first, second].map((bytes) => openEnvelope('g', key, '#b#d2', bytes));
    expect(opened.map((result) => (result.ok ? [result.plaintext.toString(), result.identity, result.counter] : result.reason))).toEqual([
      ['one', 'bob', 0n],
      ['two', 'bob', 1n],
    ]);
    expect(openEnvelope('g', key, '#a#d1', first)).toEqual({ ok: false, reason: 'wrong-nonce' });
    expect(openEnvelope('g', key, '#c#d3', first)).toEqual({ ok: false, reason: 'not-a-member' });
    expect(openEnvelope('other', key, '#b#d2', first)).toEqual({ ok: false, reason: 'bad-tag' });
    const flipped = Buffer.from(first);
    flipped[flipped.length - 20] ^= 1;
    expect(openEnvelope('g', key, '#b#d2', flipped)).toEqual({ ok: false, reason: 'bad-tag' });
    expect(openEnvelope('g', { ...key, key: Buffer.alloc(32, 8) }, '#b#d2', first)).toEqual({ ok: false, reason: 'bad-tag' });
  });
});

describe('secure-group signature cache', () => {
  it('remembers each (key, body, signature) check apart from every other', () => {
    const trustedKeys = [1, 2].map((n) => ed25519FromSeed(new Uint8Array(32).fill(n)));
    const trust = new Map([['m0', trustedKeys[0]!], ['m1', trustedKeys[1]!]]);
    const cache = new SignatureCache();
    const view: ViewInput = { group: 'g', gid: { procId: 1, time: 1, index: 1 }, members: ['#a#d', '#b#d'] };
    const a = new KeyAgreement('#a#d', { name: 'm0', privateKey: trustedKeys[0]! }, trust, cache);
    const b = new KeyAgreement('#b#d', { name: 'm1', privateKey: trustedKeys[1]! }, trust, cache);
    const c = new KeyAgreement('#a#d', { name: 'm0', privateKey: trustedKeys[0]! }, new Map([['m0', trustedKeys[1]!]]), cache);
    const leaf = a.startView(view, new Uint8Array(32).fill(9)).send[0]!;
    b.startView(view, new Uint8Array(32).fill(8));
    c.startView(view, new Uint8Array(32).fill(7));
    expect(b.receive('#a#d', leaf).rejected).toEqual([]);
    expect(a.receive('#a#d', leaf).rejected).toEqual([]);
    expect(cache.hits).toBe(1);
    // Another trust list maps m0 to another key: the cached "valid" must not carry over.
    expect(c.receive('#a#d', leaf).rejected).toEqual(['bad-signature']);
  });
});

describe('secure-group roster deadline', () => {
  it('cuts off an unknown member at the first deadline and waits ten for one known to be secure', () => {
    const keys = [1, 2, 3].map((n) => ed25519FromSeed(new Uint8Array(32).fill(n)));
    const trust = new Map(keys.map((key, index) => [`m${index}`, key]));
    const members = ['#a#d', '#b#d', '#c#d'];
    const [a, b, c] = members.map((member, index) => new KeyAgreement(member, { name: `m${index}`, privateKey: keys[index]! }, trust));
    const all = [a!, b!, c!];
    const deliver = (sender: number, bytes: Buffer) => all.map((agreement) => agreement.receive(members[sender]!, bytes));

    const first: ViewInput = { group: 'g', gid: { procId: 1, time: 1, index: 1 }, members };
    const leaves = all.map((agreement, index) => agreement.startView(first, new Uint8Array(32).fill(index + 1)).send[0]!);
    deliver(0, leaves[0]!);
    deliver(1, leaves[1]!);
    const close = a!.rosterDeadline().send;
    expect(close).toHaveLength(1); // c was never seen: one deadline is enough
    expect(deliver(0, close[0]!)[2]!.excluded).toBe('late');
    expect(deliver(2, leaves[2]!)[0]!.rejected).toEqual(['late-leaf']);

    const second: ViewInput = { ...first, gid: { procId: 1, time: 1, index: 2 } };
    const again = all.map((agreement, index) => agreement.startView(second, new Uint8Array(32).fill(index + 11)).send[0]!);
    deliver(0, again[0]!);
    deliver(1, again[1]!);
    for (let deadline = 1; deadline < 10; deadline++) expect(a!.rosterDeadline().send).toHaveLength(0);
    deliver(2, again[2]!);
    expect(a!.rosterClosed).toBe(true); // c was waited for and heard: the roster closed with everyone
    expect(deliver(2, again[2]!).map((output) => output.rejected)).toEqual([['duplicate-leaf'], ['duplicate-leaf'], ['duplicate-leaf']]);

    const third: ViewInput = { ...first, gid: { procId: 1, time: 1, index: 3 } };
    const more = all.map((agreement, index) => agreement.startView(third, new Uint8Array(32).fill(index + 21)).send[0]!);
    deliver(0, more[0]!);
    deliver(1, more[1]!);
    for (let deadline = 1; deadline < 10; deadline++) expect(a!.rosterDeadline().send).toHaveLength(0);
    expect(a!.rosterDeadline().send).toHaveLength(1); // the tenth: known or not, the roster closes

    const stranger = new KeyAgreement('#m#d', { name: 'm9', privateKey: keys[0]! }, trust);
    const view: ViewInput = { ...first, members: ['#m#d'] };
    const own = stranger.startView(view, new Uint8Array(32).fill(5)).send[0]!;
    expect(stranger.receive('#m#d', own).excluded).toBe('untrusted');
  });
});
