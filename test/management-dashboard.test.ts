// The live dashboard end to end in headless Chromium (Debian's chromium + playwright-core):
// two real daemons (127.0.0.1, 127.0.0.2) on one ring, each with its management server, and
// `tspread dashboard` over both: load the page, send traffic, start the second daemon, assert
// the chart and the ring membership follow; screenshot.
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import type { ManagementServer } from '../src/management/http.js';
import { startDashboard } from '../src/management/dashboard.js';
import { startWatchedDaemon, type WatchedDaemon } from './management-fixtures.js';
import { connect, type Session } from '../src/client/index.js';

const CHROMIUM = '/usr/bin/chromium';
const SCREENSHOT = path.resolve('test-results/dashboard.png');

async function launchChromium(): Promise<{ context: BrowserContext; close: () => Promise<void> }> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium; .ci/run does this)`);
  }
  const userDataDir = mkdtempSync(path.join(tmpdir(), 'tspread-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
    viewport: { width: 1200, height: 1000 },
  });
  return {
    context,
    close: async () => {
      await context.close();
      rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}

/** Points of the chart's dataset for `group`, as the page holds them. */
function chartPoints(page: Page, group: string): Promise<Array<{ x: number; y: number }>> {
  return page.evaluate((label) => {
    const chart = (window as unknown as { Chart: { getChart(id: string): { data: { datasets: Array<{ label: string; data: unknown[] }> } } } }).Chart.getChart('group-chart');
    const dataset = chart.data.datasets.find((entry) => entry.label === label);
    return (dataset?.data ?? []) as Array<{ x: number; y: number }>;
  }, group);
}

function ringItems(page: Page): Promise<Array<{ state: string; ringId: string; members: string[] }>> {
  return page.$$eval('#rings li.ring', (rings) =>
    rings.map((ring) => ({
      state: (ring as HTMLElement).dataset.state ?? '',
      ringId: (ring as HTMLElement).dataset.ringId ?? '',
      members: Array.from(ring.querySelectorAll('.member')).map((member) => member.textContent ?? ''),
    })),
  );
}

function ringMembers(page: Page): Promise<string[][]> {
  return page.$$eval('#rings li.ring', (rings) => rings.map((ring) => Array.from(ring.querySelectorAll('.member')).map((member) => member.textContent ?? '')));
}

const SEGMENT_PORT = 25033; // ring data; tokens on 25034
const RING_CONFIG = [`Spread_Segment 127.0.0.255:${SEGMENT_PORT} {`, '\td1 127.0.0.1', '\td2 127.0.0.2', '}', ''].join('\n');
const MEMBERSHIP_TIMEOUT_MS = 20_000;

describe('dashboard in headless Chromium', () => {
  let browser: Awaited<ReturnType<typeof launchChromium>>;
  const cleanups: Array<() => Promise<unknown>> = [];

  beforeAll(async () => {
    browser = await launchChromium();
  });
  afterAll(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
    await browser?.close();
  });

  it('plots per-group messages over time and follows ring membership of real daemons', async () => {
    const d1: WatchedDaemon = await startWatchedDaemon({ port: 25035, httpPort: 25037, config: RING_CONFIG, name: 'd1' });
    cleanups.push(() => d1.stop());
    const d2StatusUrl = 'http://127.0.0.1:25038/status';
    const dashboard: ManagementServer = await startDashboard({ statusUrls: [d1.statusUrl, d2StatusUrl], port: 25032, pollMs: 200 });
    cleanups.push(() => dashboard.close());
    const sessions: Session[] = [];
    cleanups.push(() => Promise.all(sessions.map((session) => session.disconnect())));

    const page = await browser.context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    await page.goto(dashboard.url);
    await expect.poll(() => page.textContent('#daemons tbody')).toContain(`${d2StatusUrl}unreachable`);
    await expect.poll(() => ringMembers(page)).toContainEqual(expect.arrayContaining(['d1']));
    // Alone, d1 has no ring with d2 yet (today's TotemRing waits in GATHER for every configured daemon).
    const before = await ringItems(page);
    expect(before).toHaveLength(1);
    expect(before[0].state === 'op' && before[0].members.includes('d2')).toBe(false);

    // d2 starts: the ring forms and the page shows both members, a new ring id and both daemons.
    const d2 = await startWatchedDaemon({ port: 25036, httpPort: 25038, config: RING_CONFIG, name: 'd2' });
    cleanups.push(() => d2.stop());
    await expect
      .poll(() => ringItems(page), { timeout: MEMBERSHIP_TIMEOUT_MS })
      .toEqual([{ state: 'op', ringId: expect.not.stringMatching(new RegExp(`^${before[0].ringId}$`)), members: ['d1', 'd2'] }]);
    await expect.poll(async () => (await page.$$('#daemons tbody tr[data-daemon]')).length).toBe(2);

    // A client on d1 joins 'chat': the group's row appears with its member count.
    const alice = await connect({ daemon: '25035@127.0.0.1', privateName: 'alice' });
    sessions.push(alice);
    alice.join('chat');
    await expect.poll(() => page.textContent('#groups tr[data-group="chat"]')).toBe('chat10');

    // Traffic in rounds: the chart's line for 'chat' climbs with the daemons' own counts.
    const chatMessages = (watched: WatchedDaemon) =>
      watched.daemon.node.statusSnapshot(Date.now()).groups.find((group) => group.name === 'chat')?.messages;
    for (let round = 1; round <= 3; round++) {
      for (let index = 0; index < 20; index++) alice.multicast('chat', `alice ${round}.${index}`);
      await expect.poll(() => chatMessages(d1)).toBe(round * 20);
      await expect.poll(() => chatMessages(d2)).toBe(round * 20);
      await expect.poll(async () => (await chartPoints(page, 'chat')).at(-1)?.y).toBe(round * 20);
    }

    // A client on d2 joins and sends: membership and counts cross the ring.
    const bob = await connect({ daemon: '25036@127.0.0.1', privateName: 'bob' });
    sessions.push(bob);
    bob.join('chat');
    await expect.poll(() => page.textContent('#groups tr[data-group="chat"]')).toBe('chat260');
    for (let index = 0; index < 40; index++) bob.multicast('chat', `bob ${index}`);
    await expect.poll(() => chatMessages(d1)).toBe(100);
    await expect.poll(() => chatMessages(d2)).toBe(100);
    await expect.poll(async () => (await chartPoints(page, 'chat')).at(-1)?.y).toBe(100);
    await expect.poll(() => page.textContent('#groups tr[data-group="chat"]')).toBe('chat2100');

    const points = await chartPoints(page, 'chat');
    expect(points[0].y).toBeLessThanOrEqual(20);
    expect(new Set(points.map((point) => point.y)).size).toBeGreaterThanOrEqual(4);
    expect(points.map((point) => point.x)).toEqual([...points.map((point) => point.x)].sort((a, b) => a - b));
    for (const name of ['d1', 'd2']) expect(await page.textContent(`#daemons tbody tr[data-daemon="${name}"]`)).toContain('OP');

    mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    expect(existsSync(SCREENSHOT)).toBe(true);
    expect(errors).toEqual([]);
    await page.close();
  }, 90_000);
});
