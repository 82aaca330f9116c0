// The live dashboard end to end in headless Chromium (Debian's chromium + playwright-core):
// load the page, change the ring, assert the chart and the membership follow; screenshot.
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { startManagementServer, type ManagementServer } from '../src/management/http.js';
import { startDashboard } from '../src/management/dashboard.js';
import { D1_VID, D2_VID, sampleSnapshot, startWatchedDaemon } from './management-fixtures.js';
import { connect, type Session } from '../src/client/index.js';

const CHROMIUM = '/usr/bin/chromium';
const SCREENSHOT = path.resolve('test-results/dashboard.png');
const SCREENSHOT_FAKE = path.resolve('test-results/dashboard-two-sources.png');

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

function ringMembers(page: Page): Promise<string[][]> {
  return page.$$eval('#rings li.ring', (rings) => rings.map((ring) => Array.from(ring.querySelectorAll('.member')).map((member) => member.textContent ?? '')));
}

describe('dashboard in headless Chromium', () => {
  let browser: Awaited<ReturnType<typeof launchChromium>>;
  const servers: ManagementServer[] = [];
  // Two daemons' status sources; the test changes them as a ring would.
  const state = { messages: 0, members: [D1_VID] as number[], d2Up: false };

  beforeAll(async () => {
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await Promise.all(servers.map((server) => server.close()));
  });

  it('plots per-group messages over time and follows ring membership', async () => {
    const d1 = await startManagementServer({ port: 25020, snapshot: () => sampleSnapshot({ messages: state.messages, members: state.members }) });
    const d2 = await startManagementServer({
      port: 25021,
      snapshot: () => {
        if (!state.d2Up) throw new Error('d2 down');
        return sampleSnapshot({ messages: state.messages, members: state.members, name: 'd2', vid: D2_VID });
      },
    });
    servers.push(d1, d2);
    const dashboard = await startDashboard({ statusUrls: [`${d1.url}status`, `${d2.url}status`], port: 25022, pollMs: 200 });
    servers.push(dashboard);

    const page = await browser.context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    await page.goto(dashboard.url);
    await page.waitForFunction(() => (window as unknown as { tspreadDashboard?: { updates: number } }).tspreadDashboard!.updates >= 2);
    expect(await ringMembers(page)).toEqual([['d1']]);
    await expect.poll(() => page.textContent('#daemons tbody')).toContain('unreachable');

    // Traffic: the group's count grows and the chart's line follows it.
    for (let step = 1; step <= 5; step++) {
      state.messages = step * 10;
      await page.waitForFunction((count) => {
        const points = (window as unknown as { Chart: { getChart(id: string): { data: { datasets: Array<{ label: string; data: Array<{ y: number }> }> } } } })
          .Chart.getChart('group-chart').data.datasets.find((dataset) => dataset.label === 'chat')?.data;
        return points !== undefined && points.length > 0 && points[points.length - 1].y === count;
      }, state.messages);
    }
    const points = await chartPoints(page, 'chat');
    expect(points[0].y).toBe(0);
    expect(points[points.length - 1].y).toBe(50);
    expect(points.map((point) => point.x)).toEqual([...points.map((point) => point.x)].sort((a, b) => a - b));
    expect(await page.textContent('#groups tr[data-group="chat"]')).toContain('50');

    // Membership: d2 comes up and joins the ring.
    state.d2Up = true;
    state.members = [D1_VID, D2_VID];
    await expect.poll(() => ringMembers(page)).toEqual([['d1', 'd2']]);
    await expect.poll(async () => (await page.$$('#daemons tbody tr[data-daemon]')).length).toBe(2);

    mkdirSync(path.dirname(SCREENSHOT_FAKE), { recursive: true });
    await page.screenshot({ path: SCREENSHOT_FAKE, fullPage: true });
    expect(errors).toEqual([]);
    await page.close();
  });

  it('shows a real daemon\'s groups, membership and message counts as clients send', async () => {
    const port = 25030;
    const watched = await startWatchedDaemon({ port, httpPort: 25031 });
    const daemon = watched.daemon;
    const sessions: Session[] = [];
    try {
      const dashboard = await startDashboard({ statusUrls: [watched.statusUrl], port: 25032, pollMs: 200 });
      servers.push(dashboard);

      const page = await browser.context.newPage();
      const errors: string[] = [];
      page.on('pageerror', (error) => errors.push(error.message));
      await page.goto(dashboard.url);
      await expect.poll(() => ringMembers(page)).toEqual([['localhost']]);

      // Two clients join 'chat': the group's membership shows up and grows.
      const alice = await connect({ daemon: `${port}@127.0.0.1`, privateName: 'alice' });
      sessions.push(alice);
      alice.join('chat');
      await expect.poll(() => page.textContent('#groups tr[data-group="chat"]')).toMatch(/^chat10$/);
      const bob = await connect({ daemon: `${port}@127.0.0.1`, privateName: 'bob' });
      sessions.push(bob);
      bob.join('chat');
      await expect.poll(() => page.textContent('#groups tr[data-group="chat"]')).toMatch(/^chat20$/);

      // Traffic in rounds: the chart's line for 'chat' climbs to the daemon's own count.
      for (let round = 1; round <= 4; round++) {
        for (let index = 0; index < 25; index++) alice.multicast('chat', `round ${round} message ${index}`);
        const expected = round * 25;
        await expect.poll(() => daemon.node.statusSnapshot(Date.now()).groups.find((group) => group.name === 'chat')?.messages).toBe(expected);
        await expect.poll(async () => (await chartPoints(page, 'chat')).at(-1)?.y).toBe(expected);
      }
      const points = await chartPoints(page, 'chat');
      expect(points[0].y).toBeLessThan(100);
      expect(points.at(-1)?.y).toBe(100);
      const distinct = new Set(points.map((point) => point.y));
      expect(distinct.size).toBeGreaterThanOrEqual(4);
      const row = await page.textContent('#daemons tbody tr[data-daemon="localhost"]');
      expect(row).toContain('OP');

      // Bob leaves: membership drops back to one.
      bob.leave('chat');
      await expect.poll(() => page.textContent('#groups tr[data-group="chat"]')).toMatch(/^chat1100$/);

      mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
      await page.screenshot({ path: SCREENSHOT, fullPage: true });
      expect(existsSync(SCREENSHOT)).toBe(true);
      expect(errors).toEqual([]);
      await page.close();
    } finally {
      await Promise.all(sessions.map((session) => session.disconnect()));
      await watched.stop();
    }
  });
});
