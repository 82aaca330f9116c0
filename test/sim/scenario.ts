/**
 * A simulated run drawn from one seed (swarm testing): cluster size, faults,
 * ring variant, datagram size, windows, start sequence and workload all come
 * from the seed. Phases: faults while the workload runs, then heal (no loss or
 * duplication) until everything is delivered everywhere, then quiet (the ring
 * falls nearly silent: the leader holds the token and only lets it round once
 * per heartbeat). No crashes here (ring-chaos.ts has them), but daemons start at
 * different times and heavy loss can cost a token, so memberships do change; the
 * checker (checker.ts) checks EVS across them.
 */
import { Checker } from './checker.js';
import { type FaultOptions, type SimNodeOptions, Simulator } from './network.js';
import { Prng } from './prng.js';

export interface Scenario {
  seed: number;
  nodes: number;
  faults: FaultOptions;
  node: SimNodeOptions;
  messages: number;
  largeBytesMax: number;
  safeRatio: number;
  faultPhaseMs: number;
  startSpreadMs: number;
}

export interface ScenarioResult {
  scenario: Scenario;
  delivered: number;
  safeChecked: number;
  datagrams: number;
  dropped: number;
  simulatedMs: number;
  steps: number;
  orderHash: number;
}

export function drawScenario(seed: number, overrides: Partial<Scenario> = {}): Scenario {
  const r = new Prng(seed ^ 0x5eed5eed);
  const accelerated = r.chance(0.5);
  const personalWindow = r.pick([5, 20, 40]);
  const scenario: Scenario = {
    seed,
    nodes: r.int(3, 5),
    faults: {
      loss: r.pick([0, 0.01, 0.05, 0.1, 0.2]),
      duplicate: r.pick([0, 0.02, 0.1]),
      delayMs: r.pick([0.05, 0.2, 1]),
      jitterMs: r.pick([0, 0.1, 1, 5]),
    },
    node: {
      configHash: 0x1234abcd,
      acceleratedRing: accelerated,
      acceleratedWindow: accelerated ? Math.min(personalWindow, r.pick([0, 3, 15])) : undefined,
      personalWindow,
      window: r.pick([personalWindow * 2, 160]),
      datagramBytes: r.pick([1472, 1472, 600, 9000, 32768]),
      sendQueueMessagesMax: r.pick([4, 50, 1000]),
      initialSeq: r.chance(0.3) ? 0xffffffff - r.int(0, 300) : 0,
      tokenTimeoutMs: r.pick([500, 1250]),
      hurryTimeoutMs: r.pick([150, 500]),
      tokenRetransmitMs: r.pick([20, 100]),
      joinTimeoutMs: 100,
      gatherTimeoutMs: 300,
      formTimeoutMs: 300,
    },
    messages: r.int(20, 120),
    largeBytesMax: r.pick([20_000, 200_000]),
    safeRatio: r.pick([0, 0.3, 1]),
    faultPhaseMs: r.int(200, 3000),
    startSpreadMs: r.pick([0, 500]),
    ...overrides,
  };
  return scenario;
}

function drawSize(r: Prng, largeBytesMax: number): number {
  const u = r.float();
  if (u < 0.02) return 0;
  if (u < 0.45) return r.int(1, 64);
  if (u < 0.8) return r.int(65, 1500);
  if (u < 0.96) return r.int(1501, 20_000);
  return r.int(20_001, largeBytesMax);
}

export function describe(s: Scenario): string {
  const n = s.node;
  return (
    `nodes=${s.nodes} loss=${s.faults.loss} dup=${s.faults.duplicate} delay=${s.faults.delayMs}+${s.faults.jitterMs}ms ` +
    `${n.acceleratedRing ? `accelerated(${n.acceleratedWindow})` : 'original'} W=${n.window} PW=${n.personalWindow} ` +
    `datagram=${n.datagramBytes} queue=${n.sendQueueMessagesMax} start=${n.initialSeq} msgs=${s.messages} ` +
    `large<=${s.largeBytesMax} safe=${s.safeRatio} faults=${s.faultPhaseMs}ms`
  );
}

export const HEAL_BOUND_MS = 120_000;
const START_BOUND_MS = 30_000;
const FINAL_BOUND_MS = 10_000;
const QUIET_MS = 5_000;

/** Every ring's status, counters and recent log: appended to a failure. */
export function dumpState(sim: Simulator): string {
  const lines = [`at ${sim.nowMs.toFixed(3)} ms, ${sim.inFlight()} datagrams in flight`];
  for (const node of sim.nodes) {
    const ring = node.ring;
    if (ring === null) {
      lines.push(`node ${node.index}: not started`);
      continue;
    }
    const s = ring.status();
    const d = ring.diagnostics();
    const counters = Object.entries(d.counters).filter(([, v]) => v > 0).map(([k, v]) => `${k}=${v}`).join(' ');
    lines.push(
      `node ${node.index} vid=${node.vid} ${s.state} aru=${s.aru} myAru=${s.myAru} highest=${s.highestSeq} ` +
        `pending=${ring.pendingCount()} backlog=${node.backlog.length} events=${node.events.length} next=${ring.nextDeadlineMs()} ${counters}`,
    );
    for (const entry of d.log.slice(-5)) lines.push(`    ${entry.atMs.toFixed(1)}: ${entry.text}`);
  }
  return lines.join('\n');
}

export function runScenario(scenario: Scenario): ScenarioResult {
  const sim = new Simulator(scenario.seed, scenario.nodes, scenario.faults, scenario.node, scenario.startSpreadMs);
  try {
    return runPhases(scenario, sim);
  } catch (error) {
    const e = error instanceof Error ? error : new Error(String(error));
    e.message += `\n${dumpState(sim)}`;
    if (process.env.SIM_TRACE !== undefined) {
      for (const node of sim.nodes) {
        e.message += `\nnode ${node.index} configurations: ` + node.events.filter((r) => r.event.kind !== 'deliver').map((r) => `${r.atMs.toFixed(0)} ${r.event.kind} ${(r.event as { membId: { procId: number; time: number } }).membId.time} [${(r.event as { members: number[] }).members.map((v) => sim.vids.indexOf(v)).join(',')}]`).join('; ');
      }
    }
    throw e;
  }
}

function runPhases(scenario: Scenario, sim: Simulator): ScenarioResult {
  const checker = new Checker(sim, scenario.node.initialSeq ?? 0);
  const r = new Prng(scenario.seed ^ 0x0b5e55ed);

  // Start: daemons start within startSpreadMs and merge into one ring (early ones may first form smaller rings).
  if (!sim.run(START_BOUND_MS, checker.poll(() => checker.converged()))) {
    throw new Error(`no single ring after ${START_BOUND_MS} ms\n${checker.describeConfigs()}`);
  }
  const workloadAtMs = sim.nowMs;
  const changesAtWorkload = checker.configurationChanges;

  // Workload: messages at random times during the fault phase, from random nodes.
  const plan = Array.from({ length: scenario.messages }, () => ({
    atMs: workloadAtMs + r.float() * scenario.faultPhaseMs,
    node: r.int(0, scenario.nodes - 1),
    size: drawSize(r, scenario.largeBytesMax),
    safe: r.chance(scenario.safeRatio),
  })).sort((a, b) => a.atMs - b.atMs);
  for (const item of plan) {
    sim.run(item.atMs);
    const payload = new Uint8Array(item.size);
    r.fill(payload);
    checker.submit(item.node, payload, item.safe);
  }
  sim.run(workloadAtMs + scenario.faultPhaseMs);

  // Heal: the network stops losing and duplicating. Heavy loss may have cost a token and, in
  // the gather that followed, excluded a daemon for a while: then EVS (checkFinal) decides who
  // must have what. Without a membership change everything must arrive everywhere.
  sim.faults = { loss: 0, duplicate: 0, delayMs: scenario.faults.delayMs, jitterMs: scenario.faults.jitterMs };
  const healEnd = sim.nowMs + HEAL_BOUND_MS;
  if (!sim.run(healEnd, checker.poll(() => checker.settled()))) {
    throw new Error(`not settled after ${HEAL_BOUND_MS} ms of heal\n${checker.describeConfigs()}`);
  }
  if (checker.configurationChanges === changesAtWorkload) {
    sim.run(sim.nowMs + FINAL_BOUND_MS, checker.poll(() => checker.complete()));
    checker.checkComplete();
  }
  const final = sim.nodes.map((node) => checker.submit(node.index, new Uint8Array([node.index]), node.index % 2 === 0));
  if (!sim.run(sim.nowMs + FINAL_BOUND_MS, checker.poll(() => checker.deliveredEverywhere(final)))) {
    throw new Error(`final messages not delivered everywhere: ${checker.missing(final)}`);
  }
  checker.checkFinal();
  const completeAtMs = sim.nowMs;

  // Quiet: an idle ring sends only its heartbeat rotation: per member a token, perhaps one re-send
  // (the next token is a whole heartbeat away) and an ack.
  const sentBefore = sim.datagramsSent;
  const changesBefore = checker.configurationChanges;
  sim.run(sim.nowMs + QUIET_MS);
  const heartbeatMs = Math.min(scenario.node.hurryTimeoutMs!, Math.floor(scenario.node.tokenTimeoutMs! / 3));
  const allowed = (QUIET_MS / heartbeatMs + 4) * scenario.nodes * 3;
  if (sim.datagramsSent - sentBefore > allowed) {
    throw new Error(`idle ring sent ${sim.datagramsSent - sentBefore} datagrams in ${QUIET_MS} ms (at most ${allowed}), ${(sim.nowMs - completeAtMs).toFixed(0)} ms after completing`);
  }
  if (checker.configurationChanges !== changesBefore) throw new Error('membership changed while the ring was idle');
  checker.checkFinal();
  return {
    scenario,
    delivered: checker.submittedTotal,
    safeChecked: checker.safeChecked,
    datagrams: sim.datagramsSent,
    dropped: sim.datagramsDropped,
    simulatedMs: sim.nowMs,
    steps: sim.steps,
    orderHash: checker.orderHash(),
  };
}
