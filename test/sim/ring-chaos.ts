/**
 * Ring chaos (VOPR style): one seed draws the cluster, the network faults, the
 * timeouts and a schedule of crashes (a node stops; it may restart later as a fresh
 * daemon with its state lost), stalls (a node's process pauses, shorter or longer than
 * TokenTimeout), partitions into components and heals, while a
 * workload submits AGREED and SAFE messages at random nodes. The checker
 * (checker.ts) checks EVS online. Then liveness mode: the network heals, loss and
 * duplication stop, every crashed node restarts, and within LIVENESS_BOUND_MS all
 * nodes must be operational in one regular configuration with everything they accepted
 * delivered; a final message from each node must reach every node; the ring must
 * then stay in that configuration (no spurious change), and checkFinal runs.
 */
import { Checker } from './checker.js';
import { type FaultOptions, type SimNodeOptions, Simulator } from './network.js';
import { Prng } from './prng.js';
import { dumpState } from './scenario.js';

export type ChaosAction =
  | { atMs: number; kind: 'crash'; node: number }
  | { atMs: number; kind: 'restart'; node: number }
  | { atMs: number; kind: 'partition'; components: number[][] }
  | { atMs: number; kind: 'heal' }
  | { atMs: number; kind: 'stall'; node: number; ms: number };

export interface ChaosScenario {
  seed: number;
  nodes: number;
  faults: FaultOptions;
  node: SimNodeOptions;
  chaosMs: number;
  actions: ChaosAction[];
  messages: number;
  safeRatio: number;
  largeBytesMax: number;
}

export interface ChaosResult {
  scenario: ChaosScenario;
  deliveries: number;
  safeChecked: number;
  configurationChanges: number;
  convergedAfterMs: number;
  simulatedMs: number;
  steps: number;
  orderHash: number;
}

export const LIVENESS_BOUND_MS = 30_000;
const START_BOUND_MS = 10_000;
const FINAL_BOUND_MS = 10_000;
const STABLE_MS = 3_000;

export function drawChaos(seed: number): ChaosScenario {
  const r = new Prng(seed ^ 0xc4a05);
  const nodes = r.int(3, 6);
  const chaosMs = r.int(2_000, 10_000);
  const personalWindow = r.pick([5, 20]);
  const accelerated = r.chance(0.5);
  const scenario: ChaosScenario = {
    seed,
    nodes,
    faults: {
      loss: r.pick([0, 0, 0.01, 0.05]),
      duplicate: r.pick([0, 0.02]),
      delayMs: r.pick([0.05, 0.2, 1]),
      jitterMs: r.pick([0, 0.1, 2]),
    },
    node: {
      configHash: 0x5eed1e55,
      acceleratedRing: accelerated,
      acceleratedWindow: accelerated ? Math.min(personalWindow, 3) : undefined,
      personalWindow,
      window: r.pick([personalWindow * 2, 160]),
      datagramBytes: r.pick([1472, 600, 32768]),
      sendQueueMessagesMax: r.pick([8, 1000]),
      initialSeq: r.chance(0.3) ? 0xffffffff - r.int(0, 300) : 0,
      tokenRetransmitMs: r.pick([20, 50]),
      // tspread's defaults, sometimes Spread's slower ones.
      ...(r.chance(0.8)
        ? {}
        : { tokenTimeoutMs: 1250, hurryTimeoutMs: 500, joinTimeoutMs: 250, gatherTimeoutMs: 1250, formTimeoutMs: 1250, lookupTimeoutMs: 3000 }),
    },
    chaosMs,
    actions: [],
    messages: r.int(30, 200),
    safeRatio: r.pick([0, 0.3, 1]),
    largeBytesMax: r.pick([3_000, 30_000]),
  };
  // The schedule, replayed against a model of who is up (at least one node stays up).
  const up = new Set(Array.from({ length: nodes }, (_, i) => i));
  let partitioned = false;
  for (let atMs = r.int(200, 1500); atMs < chaosMs; atMs += r.int(50, 1500)) {
    const u = r.float();
    const down = [...Array(nodes).keys()].filter((i) => !up.has(i));
    if (r.chance(0.15)) {
      // A stalled process (CPU starvation, a long task): shorter or longer than TokenTimeout.
      scenario.actions.push({ atMs, kind: 'stall', node: r.int(0, nodes - 1), ms: r.pick([50, 200, 350, 600, 1500]) });
    } else if (u < 0.3 && up.size > 1) {
      const node = r.pick([...up]);
      up.delete(node);
      scenario.actions.push({ atMs, kind: 'crash', node });
    } else if (u < 0.55 && down.length > 0) {
      const node = r.pick(down);
      up.add(node);
      scenario.actions.push({ atMs, kind: 'restart', node });
    } else if (u < 0.8 && !partitioned) {
      const parts = r.int(2, Math.min(3, nodes));
      const components: number[][] = Array.from({ length: parts }, () => []);
      for (let i = 0; i < nodes; i++) components[i < parts ? i : r.int(0, parts - 1)].push(i);
      partitioned = true;
      scenario.actions.push({ atMs, kind: 'partition', components });
    } else if (partitioned) {
      partitioned = false;
      scenario.actions.push({ atMs, kind: 'heal' });
    }
  }
  return scenario;
}

export function describeChaos(s: ChaosScenario): string {
  const n = s.node;
  const actions = s.actions
    .map((a) => `${a.atMs}:${a.kind}${a.kind === 'crash' || a.kind === 'restart' ? ` ${a.node}` : a.kind === 'stall' ? ` ${a.node} ${a.ms}ms` : a.kind === 'partition' ? ` ${a.components.map((c) => c.join('')).join('|')}` : ''}`)
    .join(' ');
  return (
    `nodes=${s.nodes} loss=${s.faults.loss} dup=${s.faults.duplicate} delay=${s.faults.delayMs}+${s.faults.jitterMs}ms ` +
    `${n.acceleratedRing ? 'accelerated' : 'original'} PW=${n.personalWindow} token=${n.tokenTimeoutMs ?? 'default'} ` +
    `start=${n.initialSeq} msgs=${s.messages} safe=${s.safeRatio} chaos=${s.chaosMs}ms [${actions}]`
  );
}

function drawSize(r: Prng, largeBytesMax: number): number {
  const u = r.float();
  if (u < 0.5) return r.int(0, 64);
  if (u < 0.9) return r.int(65, 1500);
  return r.int(1501, largeBytesMax);
}

export function runChaos(scenario: ChaosScenario): ChaosResult {
  const sim = new Simulator(scenario.seed, scenario.nodes, scenario.faults, scenario.node, 300);
  const checker = new Checker(sim, scenario.node.initialSeq ?? 0);
  try {
    return runChaosPhases(scenario, sim, checker);
  } catch (error) {
    const e = error instanceof Error ? error : new Error(String(error));
    e.message += `\n${checker.describeConfigs()}\n${dumpState(sim)}`;
    if (process.env.SIM_TRACE !== undefined) {
      for (const node of sim.nodes) {
        const configs = node.events
          .filter((x) => x.event.kind !== 'deliver')
          .map((x) => {
            const ev = x.event as { kind: string; membId: { procId: number; time: number }; members: number[] };
            return `${x.atMs.toFixed(0)} ${ev.kind[0]} ${sim.vids.indexOf(ev.membId.procId)}/${ev.membId.time} [${ev.members.map((v) => sim.vids.indexOf(v)).join('')}]`;
          });
        e.message += `\nnode ${node.index}: ${configs.join('; ')}`;
      }
    }
    throw e;
  }
}

function runChaosPhases(scenario: ChaosScenario, sim: Simulator, checker: Checker): ChaosResult {
  const r = new Prng(scenario.seed ^ 0x10ad);
  if (!sim.run(START_BOUND_MS, checker.poll(() => checker.converged()))) throw new Error(`no single ring after ${START_BOUND_MS} ms`);
  const t0 = sim.nowMs;

  type Step = { atMs: number; run: () => void };
  const steps: Step[] = scenario.actions.map((a) => ({
    atMs: t0 + a.atMs,
    run: () => {
      if (a.kind === 'crash') sim.crash(a.node);
      else if (a.kind === 'restart') sim.restart(a.node);
      else if (a.kind === 'partition') sim.partition(a.components);
      else if (a.kind === 'stall') sim.pause(a.node, sim.nowMs + a.ms);
      else sim.heal();
    },
  }));
  for (let i = 0; i < scenario.messages; i++) {
    const atMs = t0 + r.float() * scenario.chaosMs;
    const node = r.int(0, scenario.nodes - 1);
    const payload = new Uint8Array(drawSize(r, scenario.largeBytesMax));
    r.fill(payload);
    const safe = r.chance(scenario.safeRatio);
    steps.push({ atMs, run: () => void checker.submit(node, payload, safe) });
  }
  steps.sort((a, b) => a.atMs - b.atMs);
  for (const step of steps) {
    sim.run(step.atMs);
    step.run();
  }
  // Stalls still running end first (a stalled node would look converged to the checker).
  sim.run(Math.max(t0 + scenario.chaosMs, ...sim.nodes.map((n) => n.pausedUntilMs)));

  // Liveness mode: a healed, lossless network and every node up.
  const healAtMs = sim.nowMs;
  sim.heal();
  sim.faults = { loss: 0, duplicate: 0, delayMs: scenario.faults.delayMs, jitterMs: scenario.faults.jitterMs };
  for (const node of sim.nodes) if (node.ring === null) sim.restart(node.index);
  if (!sim.run(healAtMs + LIVENESS_BOUND_MS, checker.poll(() => checker.settled()))) {
    throw new Error(`liveness: not settled ${LIVENESS_BOUND_MS} ms after the heal`);
  }
  const convergedAfterMs = sim.nowMs - healAtMs;
  const final = sim.nodes.map((node) => checker.submit(node.index, new Uint8Array([node.index, 0xff]), node.index % 2 === 1));
  if (!sim.run(sim.nowMs + FINAL_BOUND_MS, checker.poll(() => checker.deliveredEverywhere(final)))) {
    throw new Error(`liveness: final messages not delivered everywhere: ${checker.missing(final)}`);
  }
  const changes = checker.configurationChanges;
  sim.run(sim.nowMs + STABLE_MS);
  if (checker.configurationChanges !== changes) throw new Error('liveness: membership changed again on a healthy network');
  checker.checkFinal();
  return {
    scenario,
    deliveries: checker.deliveries,
    safeChecked: checker.safeChecked,
    configurationChanges: checker.configurationChanges,
    convergedAfterMs,
    simulatedMs: sim.nowMs,
    steps: sim.steps,
    orderHash: checker.orderHash(),
  };
}
