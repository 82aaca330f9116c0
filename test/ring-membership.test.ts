/**
 * Daemon membership one behaviour at a time, on the simulator with tspread's default
 * timeouts: a crash, a restart, a partition and its heal (idle and busy), EVS recovery
 * of messages a survivor missed, messages submitted during a membership change, stale
 * packets of an earlier ring, a daemon that can no longer receive, and how long each
 * takes in simulated time. The ring-level EVS checker watches every run.
 */
import { describe, expect, it } from 'vitest';
import { FAIL_TO_RECEIVE_VISITS, GATHER_TIMEOUT_MS_DEFAULT, JOIN_TIMEOUT_MS_DEFAULT, LOOKUP_TIMEOUT_MS_DEFAULT, TOKEN_TIMEOUT_MS_DEFAULT } from '../src/ring/limits.js';
import { decodePacket, PacketType } from '../src/ring/packet.js';
import type { RingEvent } from '../src/ring/types.js';
import { Checker } from './sim/checker.js';
import { type FaultOptions, type SimNode, Simulator } from './sim/network.js';

const clean: FaultOptions = { loss: 0, duplicate: 0, delayMs: 0.1, jitterMs: 0.05 };
const HASH = 0x6d656d62;

type Regular = Extract<RingEvent, { kind: 'regular' }>;

function configurations(node: SimNode): { atMs: number; event: Exclude<RingEvent, { kind: 'deliver' }> }[] {
  return node.events.filter((e) => e.event.kind !== 'deliver') as { atMs: number; event: Exclude<RingEvent, { kind: 'deliver' }> }[];
}

function lastRegular(node: SimNode): Regular {
  const all = configurations(node).filter((e) => e.event.kind === 'regular');
  return all[all.length - 1].event as Regular;
}

/** A started cluster in one ring, with a checker. */
function cluster(seed: number, count: number, faults = clean): { sim: Simulator; checker: Checker } {
  const sim = new Simulator(seed, count, faults, { configHash: HASH }, 20);
  const checker = new Checker(sim);
  expect(sim.run(2_000, checker.poll(() => checker.converged()))).toBe(true);
  return { sim, checker };
}

/** Keeps every live node submitting now and then, so the ring is busy. */
function traffic(sim: Simulator, checker: Checker, untilMs: number, everyMs = 2): void {
  for (let t = sim.nowMs; t < untilMs; t += everyMs) {
    sim.run(t);
    for (const node of sim.nodes) if (node.ring !== null && node.backlog.length < 5) checker.submit(node.index, new Uint8Array(200).fill(node.index), node.index === 0);
  }
  sim.run(untilMs);
}

describe('a crash', () => {
  it('busy ring: the survivors install a new ring within TokenTimeout + GatherTimeout, with a transitional first', () => {
    const { sim, checker } = cluster(1, 4);
    traffic(sim, checker, sim.nowMs + 200);
    const crashAt = sim.nowMs;
    sim.crash(2);
    traffic(sim, checker, crashAt + 1_500);
    const survivors = [0, 1, 3].map((i) => sim.nodes[i]);
    const expected = survivors.map((n) => n.vid);
    for (const node of survivors) {
      const changes = configurations(node).filter((e) => e.atMs > crashAt);
      expect(changes.map((e) => e.event.kind)).toEqual(['transitional', 'regular']);
      expect(changes[0].event.members).toEqual(expected);
      expect(changes[1].event.members).toEqual(expected);
      expect(changes[1].atMs - crashAt).toBeLessThan(TOKEN_TIMEOUT_MS_DEFAULT + GATHER_TIMEOUT_MS_DEFAULT + 50);
      expect(node.ring!.diagnostics().counters.gatherTokenLoss + node.ring!.diagnostics().counters.gatherJoin).toBeGreaterThan(0);
    }
    sim.run(sim.nowMs + 500);
    checker.checkFinal();
  });

  it('idle ring: the heartbeat rotation notices it as well', () => {
    const { sim, checker } = cluster(2, 3);
    sim.run(sim.nowMs + 2_000); // long idle: the token is parked between heartbeats
    const crashAt = sim.nowMs;
    sim.crash(1);
    sim.run(crashAt + 1_500);
    for (const node of [sim.nodes[0], sim.nodes[2]]) {
      const regular = configurations(node).filter((e) => e.atMs > crashAt && e.event.kind === 'regular');
      expect(regular).toHaveLength(1);
      expect(regular[0].event.members).toEqual([sim.vids[0], sim.vids[2]]);
      expect(regular[0].atMs - crashAt).toBeLessThan(TOKEN_TIMEOUT_MS_DEFAULT + GATHER_TIMEOUT_MS_DEFAULT + 50);
    }
    checker.checkFinal();
  });

  it('of the leader: the next daemon leads the new ring', () => {
    const { sim, checker } = cluster(3, 3);
    traffic(sim, checker, sim.nowMs + 100);
    sim.crash(0);
    traffic(sim, checker, sim.nowMs + 1_500);
    for (const node of [sim.nodes[1], sim.nodes[2]]) {
      expect(lastRegular(node)).toMatchObject({ members: [sim.vids[1], sim.vids[2]], membId: { procId: sim.vids[1] } });
    }
    checker.checkFinal();
  });
});

describe('a restart', () => {
  it('merges within about one JoinTimeout; the others see a transitional without it, the new daemon only a regular', () => {
    const { sim, checker } = cluster(4, 3);
    sim.crash(2);
    sim.run(sim.nowMs + 1_500);
    const before = lastRegular(sim.nodes[0]);
    expect(before.members).toEqual(sim.vids.slice(0, 2));
    const restartAt = sim.nowMs;
    sim.restart(2);
    sim.run(restartAt + 1_000);
    const merged = lastRegular(sim.nodes[0]);
    expect(merged.members).toEqual(sim.vids);
    expect(merged.previous).toEqual([before.membId, before.membId, { procId: 0, time: 0 }]);
    const mergedAt = configurations(sim.nodes[0]).at(-1)!.atMs;
    expect(mergedAt - restartAt).toBeLessThan(JOIN_TIMEOUT_MS_DEFAULT + 50);
    expect(configurations(sim.nodes[0]).slice(-2).map((e) => e.event)).toEqual([
      { kind: 'transitional', membId: merged.membId, members: sim.vids.slice(0, 2) },
      merged,
    ]);
    expect(configurations(sim.nodes[2]).filter((e) => e.atMs >= restartAt).map((e) => e.event)).toEqual([merged]);
    checker.checkFinal();
  });

  it('before the others noticed the crash: its JOIN (a new incarnation) starts the membership', () => {
    const { sim, checker } = cluster(5, 3);
    traffic(sim, checker, sim.nowMs + 100);
    // The old incarnation dies and the new one starts at once: no token loss yet anywhere.
    sim.restart(1, sim.nowMs + 5);
    traffic(sim, checker, sim.nowMs + 1_000);
    expect(lastRegular(sim.nodes[0]).members).toEqual(sim.vids);
    const counters = sim.nodes[0].ring!.diagnostics().counters;
    expect(counters.gatherRestart + counters.gatherJoin).toBeGreaterThan(0);
    sim.run(sim.nowMs + 1_000);
    checker.checkFinal();
  });
});

describe('a partition', () => {
  it('splits the ring into components that each go on, and the idle components merge after the heal within LookupTimeout', () => {
    const { sim, checker } = cluster(6, 5);
    sim.partition([[0, 1, 2], [3, 4]]);
    traffic(sim, checker, sim.nowMs + 1_500);
    expect(lastRegular(sim.nodes[0]).members).toEqual(sim.vids.slice(0, 3));
    expect(lastRegular(sim.nodes[4]).members).toEqual(sim.vids.slice(3));
    expect(lastRegular(sim.nodes[4]).membId.procId).toBe(sim.vids[3]);
    sim.run(sim.nowMs + 2_000); // both sides idle
    const healAt = sim.nowMs;
    sim.heal();
    expect(sim.run(healAt + LOOKUP_TIMEOUT_MS_DEFAULT + 200, checker.poll(() => checker.converged()))).toBe(true);
    const merged = lastRegular(sim.nodes[0]);
    expect(merged.members).toEqual(sim.vids);
    const sides = merged.previous!.map((p) => `${p.procId}/${p.time}`);
    expect(new Set(sides).size).toBe(2);
    expect(sim.nodes[3].ring!.diagnostics().counters.probesSent + sim.nodes[0].ring!.diagnostics().counters.probesSent).toBeGreaterThan(0);
    checker.checkFinal();
  });

  it('busy components merge as soon as one hears the other', () => {
    const { sim, checker } = cluster(7, 4);
    sim.partition([[0, 1], [2, 3]]);
    traffic(sim, checker, sim.nowMs + 1_500);
    const healAt = sim.nowMs;
    sim.heal();
    traffic(sim, checker, healAt + 300);
    expect(checker.converged() || lastRegular(sim.nodes[0]).members.length === 4).toBe(true);
    expect(sim.nodes[0].ring!.diagnostics().counters.gatherForeignMessage + sim.nodes[2].ring!.diagnostics().counters.gatherForeignMessage).toBeGreaterThan(0);
    sim.run(sim.nowMs + 1_000);
    checker.checkFinal();
  });

  it('while the components gather, the cluster is not converged (no configuration event says so): a message submitted then is delivered in its component only', () => {
    const { sim, checker } = cluster(14, 3);
    sim.partition([[0], [1, 2]]);
    const gathering = () => sim.nodes.every((n) => n.ring!.status().state === 'gather');
    expect(sim.run(sim.nowMs + TOKEN_TIMEOUT_MS_DEFAULT + 100, gathering)).toBe(true);
    // Every node's last configuration is still the full ring: only the rings' state shows they left it.
    for (const node of sim.nodes) expect(lastRegular(node).members).toEqual(sim.vids);
    expect(checker.converged()).toBe(false);
    expect(checker.settled()).toBe(false);
    // Submitted now, a message goes out in whatever ring its daemon installs next: here its component's.
    const during = sim.nodes.map((node) => checker.submit(node.index, new Uint8Array([node.index]), node.index === 1));
    sim.run(sim.nowMs + GATHER_TIMEOUT_MS_DEFAULT + 200);
    expect(lastRegular(sim.nodes[0]).members).toEqual([sim.vids[0]]);
    sim.heal();
    expect(sim.run(sim.nowMs + LOOKUP_TIMEOUT_MS_DEFAULT + 500, checker.poll(() => checker.settled()))).toBe(true);
    const holders = (id: number) => sim.nodes.filter((n) => checker.messages[id].deliveredBy.has(n.ring!)).map((n) => n.index);
    expect(during.map(holders)).toEqual([[0], [1, 2], [1, 2]]);
    // Once settled for real, what each node submits reaches every node.
    const final = sim.nodes.map((node) => checker.submit(node.index, new Uint8Array([node.index, 0xff]), false));
    expect(sim.run(sim.nowMs + 1_000, checker.poll(() => checker.deliveredEverywhere(final)))).toBe(true);
    checker.checkFinal();
  });
});

describe('EVS recovery', () => {
  it('a survivor gets the old ring messages it missed from another survivor; both deliver the same set before the transitional', () => {
    const { sim, checker } = cluster(8, 3);
    // Node 2 receives nothing node 0 multicasts (nor retransmissions of it); node 1 does.
    sim.dropIf = (from, to, bytes) => {
      const p = decodePacket(bytes);
      return to === 2 && p.ok && p.packet.type === PacketType.DATA && p.packet.origin === sim.vids[0];
    };
    const ids = Array.from({ length: 30 }, (_, i) => checker.submit(0, new Uint8Array(300).fill(i), i % 3 === 0));
    sim.run(sim.nowMs + 50);
    sim.crash(0);
    sim.dropIf = null;
    sim.run(sim.nowMs + 1_500);
    expect(sim.nodes[2].ring!.diagnostics().counters.recoveredPackets).toBeGreaterThan(0);
    expect(sim.nodes[1].ring!.diagnostics().counters.recoveryPacketsSent).toBeGreaterThan(0);
    const deliveredBy = (node: SimNode) =>
      node.events.flatMap((e) => (e.event.kind === 'deliver' ? [new DataView(e.event.payload.buffer, e.event.payload.byteOffset).getUint32(0)] : []));
    const at1 = deliveredBy(sim.nodes[1]).filter((id) => ids.includes(id));
    expect(at1.length).toBeGreaterThan(0);
    expect(deliveredBy(sim.nodes[2]).filter((id) => ids.includes(id))).toEqual(at1);
    checker.checkFinal();
  });

  it('messages submitted while the membership changes are sent in the new ring', () => {
    const { sim, checker } = cluster(9, 3);
    sim.crash(2);
    sim.run(sim.nowMs + TOKEN_TIMEOUT_MS_DEFAULT + 20); // gathering now
    expect(sim.nodes[0].ring!.status().state).not.toBe('op');
    const ids = [checker.submit(0, new Uint8Array([1]), false), checker.submit(1, new Uint8Array(5000), true)];
    sim.run(sim.nowMs + 1_000);
    expect(checker.deliveredEverywhere(ids) || sim.nodes.filter((n) => n.ring !== null).every((n) => ids.every((id) => checker.messages[id].deliveredBy.has(n.ring!)))).toBe(true);
    checker.checkFinal();
  });
});

describe('a stalled daemon', () => {
  it('stalled for less than TokenTimeout: no membership change (it reads the token before declaring it lost)', () => {
    const { sim, checker } = cluster(12, 3);
    traffic(sim, checker, sim.nowMs + 100);
    const changes = checker.configurationChanges;
    for (let round = 0; round < 5; round++) {
      sim.pause(1, sim.nowMs + TOKEN_TIMEOUT_MS_DEFAULT * 0.8);
      traffic(sim, checker, sim.nowMs + 1_000);
    }
    expect(checker.configurationChanges).toBe(changes);
    expect(sim.nodes[1].ring!.diagnostics().counters.lateTicks).toBeGreaterThan(0);
    expect(sim.nodes[1].ring!.diagnostics().log.some((l) => l.text.includes('ms late (the process was stalled)'))).toBe(true);
    expect(checker.settled() || sim.run(sim.nowMs + 2_000, checker.poll(() => checker.settled()))).toBe(true);
    checker.checkFinal();
  });

  it('stalled for longer: the others go on without it, and it merges back when it wakes', () => {
    const { sim, checker } = cluster(13, 3);
    traffic(sim, checker, sim.nowMs + 100);
    sim.pause(2, sim.nowMs + 2_000);
    traffic(sim, checker, sim.nowMs + 1_500);
    expect(lastRegular(sim.nodes[0]).members).toEqual(sim.vids.slice(0, 2));
    traffic(sim, checker, sim.nowMs + 2_000);
    expect(sim.run(sim.nowMs + 3_000, checker.poll(() => checker.settled()))).toBe(true);
    expect(lastRegular(sim.nodes[2]).members).toEqual(sim.vids);
    checker.checkFinal();
  });
});

describe('robustness', () => {
  it('packets of an earlier ring arriving late are ignored, not taken for a foreign ring', () => {
    const { sim, checker } = cluster(10, 3);
    const captured: { from: number; to: number; bytes: Uint8Array }[] = [];
    sim.dropIf = (from, to, bytes) => {
      if (captured.length < 50 && decodePacket(bytes).ok) captured.push({ from, to, bytes });
      return false;
    };
    traffic(sim, checker, sim.nowMs + 50);
    sim.dropIf = null;
    sim.crash(2);
    sim.run(sim.nowMs + 1_500);
    const changes = checker.configurationChanges;
    // Replay the old ring's packets (node 2's too) at the survivors.
    for (const { from, to, bytes } of captured) if (to !== 2) sim.nodes[to].ring!.receive(bytes, sim.nowMs), void from;
    sim.run(sim.nowMs + 1_000);
    expect(checker.configurationChanges).toBe(changes);
    expect(sim.nodes[0].ring!.diagnostics().counters.staleRing).toBeGreaterThan(0);
    checker.checkFinal();
  });

  it('a member that no longer receives what one daemon sends gathers ("failed to receive") instead of stalling the ring', () => {
    const { sim, checker } = cluster(11, 3);
    // Packets that node 1 made never reach node 2, whoever sends them (retransmissions too);
    // a recovery packet wraps them in a packet of its sender's own, and gets through.
    sim.dropIf = (_from, to, bytes) => {
      const p = decodePacket(bytes);
      return to === 2 && p.ok && p.packet.type === PacketType.DATA && p.packet.origin === sim.vids[1];
    };
    const id = checker.submit(1, new Uint8Array(100), false);
    sim.run(sim.nowMs + 2_000);
    const counters = sim.nodes[2].ring!.diagnostics().counters;
    expect(counters.gatherFailedToReceive).toBeGreaterThan(0);
    expect(counters.recoveredPackets).toBeGreaterThan(0);
    expect(FAIL_TO_RECEIVE_VISITS).toBeGreaterThan(10);
    expect(checker.deliveredEverywhere([id])).toBe(true);
    sim.dropIf = null;
    expect(sim.run(sim.nowMs + 5_000, checker.poll(() => checker.settled()))).toBe(true);
    checker.checkFinal();
  });
});
