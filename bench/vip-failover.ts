/**
 * vip fail-over benchmark in network namespaces (test/helpers/netns-vip.ts): three hosts,
 * each with its own `tspread daemon` (spread.conf without timeouts, i.e. tspread's LAN
 * defaults) and `tspread vip` (Mature 1s, Balance 1s/1), six virtual addresses, a client
 * host asking every address over HTTP every 20 ms (a new request each time, 300 ms timeout).
 * Per run one host is the victim (in turn) of:
 *
 *   crash   — the host dies: its link goes down and its daemon and vip get SIGKILL;
 *   vipkill — only its `tspread vip` gets SIGKILL (its address guard deletes the addresses);
 *   clean   — SIGTERM to its `tspread vip` (releases, leaves the group).
 *
 * Measured from the event: `held` = every address configured on exactly one of the other
 * hosts (a shell loop reads the kernels every 50 ms), `answered` = each of them answered over HTTP by another host
 * (the figure the issue's goal is about). The cluster is healed and rebalanced between runs.
 * `--timeouts spread` gives the daemons Spread 5.0.1's LAN timeouts instead (as a cluster
 * of Spread daemons would have). Needs root. Build first (`npx tsc -p .`), then:
 *
 *   node dist/bench/vip-failover.js [--runs 5] [--events crash,vipkill,clean]
 *       [--timeouts tspread|spread] [--json FILE]
 */
import { writeFileSync } from 'node:fs';
import { type HolderSample, type ProbeSample, VipLab } from '../test/helpers/netns-vip.js';
import { flag, median } from './common.js';
import { SPREAD_LAN_TIMEOUTS } from '../test/helpers/daemon.js';

type EventName = 'crash' | 'vipkill' | 'clean';

async function balanced(lab: VipLab): Promise<void> {
  const hosts = [0, 1, 2];
  await lab.until(() => lab.everyAddressOnce(hosts) && hosts.every((h) => lab.heldBy(h).length === 2), 'balanced', 60_000);
}

/** Runs one event against `victim`, then brings the victim back and waits for balance. */
async function runOnce(lab: VipLab, event: EventName, victim: number, probes: ProbeSample[], samples: HolderSample[]) {
  const result = await lab.failOver(
    victim,
    async () => {
      if (event === 'crash') {
        lab.spread.net.isolate(victim);
        lab.spread.kill(victim);
        lab.killVip(victim);
      } else if (event === 'vipkill') lab.killVip(victim);
      else await lab.stopVip(victim);
    },
    probes,
    samples,
  );
  if (event === 'crash') {
    lab.spread.heal();
    await lab.spread.restart(victim);
  }
  lab.startVip(victim);
  await balanced(lab);
  return result;
}

const runs = Number(flag('runs', '5'));
const events = flag('events', 'crash,vipkill,clean').split(',') as EventName[];
const jsonFile = flag('json', '');

const timeouts = flag('timeouts', 'tspread');
const lab = await VipLab.start({ spreadLines: timeouts === 'spread' ? SPREAD_LAN_TIMEOUTS : [] });
const results: Record<string, { heldMs: number[]; answeredMs: number[] }> = {};
try {
  for (let host = 0; host < 3; host++) lab.startVip(host);
  await balanced(lab);
  const prober = lab.prober(20, 300);
  const sampler = lab.sampler(50);
  await lab.until(() => prober.samples.length > 50, 'first probes');
  for (const event of events) {
    results[event] = { heldMs: [], answeredMs: [] };
    for (let run = 0; run < runs; run++) {
      const result = await runOnce(lab, event, run % 3, prober.samples, sampler.samples);
      results[event].heldMs.push(result.heldMs);
      results[event].answeredMs.push(result.answeredMs);
      process.stderr.write(`${event} #${run + 1} (host ${run % 3}): held ${result.heldMs} ms, answered ${result.answeredMs} ms\n`);
    }
  }
  prober.stop();
  sampler.stop();
} finally {
  await lab.destroy();
}

const row = (values: number[]) => `${median(values)} (${Math.min(...values)}–${Math.max(...values)})`;
console.log('| event | held again, ms: median (min–max) | answered again, ms: median (min–max) |');
console.log('|---|---|---|');
for (const [event, figures] of Object.entries(results)) console.log(`| ${event} | ${row(figures.heldMs)} | ${row(figures.answeredMs)} |`);
if (jsonFile !== '') writeFileSync(jsonFile, JSON.stringify({ runs, timeouts, results }, null, 2));
