/**
 * `tspread dashboard`: the live web page for a whole ring. It polls every daemon's /status
 * (the management HTTP server each daemon runs with its --http option) and serves the
 * dashboard page plus the aggregated /ring view the page polls.
 *
 * Daemons are named either by URL (`--status-url`, repeatable) or by a configuration file
 * plus the HTTP port convention: `http://<daemon address>:<--http-port>/status`.
 */
import { Command } from 'commander';
import type { SpreadConfig } from '../config/types.js';
import type { DaemonStatusSnapshot } from '../daemon/status-types.js';
import { parseListenSpec, startManagementServer, type DaemonView, type ManagementServer, type RingView } from './http.js';

export const DASHBOARD_DEFAULT_LISTEN = '127.0.0.1:8480';
/** Fetches older than this are reused: many open pages do not multiply the load on daemons. */
const RING_CACHE_MS = 250;
const FETCH_TIMEOUT_MS = 2000;

/** The /status URL of every configured daemon under the port convention. */
export function statusUrlsFromConfig(config: SpreadConfig, httpPort: number): string[] {
  return config.daemons.map((daemon) => {
    const host = daemon.address.includes(':') ? `[${daemon.address.replace(/%.*$/, '')}]` : daemon.address;
    return `http://${host}:${httpPort}/status`;
  });
}

export async function fetchDaemonView(url: string, timeoutMs = FETCH_TIMEOUT_MS): Promise<DaemonView> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), cache: 'no-store' });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const snapshot = (await response.json()) as DaemonStatusSnapshot;
    return { source: url, ok: true, snapshot, fetchedAtMs: Date.now() };
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause?.code;
    return { source: url, ok: false, error: cause ?? (error as Error).message, fetchedAtMs: Date.now() };
  }
}

/** A /ring source that polls `urls` on demand, sharing one fetch between close requests. */
export function ringFromStatusUrls(urls: readonly string[], timeoutMs = FETCH_TIMEOUT_MS): () => Promise<RingView> {
  let last: { atMs: number; view: Promise<RingView> } | null = null;
  return () => {
    const now = Date.now();
    if (last && now - last.atMs < RING_CACHE_MS) return last.view;
    const view = Promise.all(urls.map((url) => fetchDaemonView(url, timeoutMs))).then((daemons) => ({ generatedAtMs: Date.now(), daemons }));
    last = { atMs: now, view };
    return view;
  };
}

export interface DashboardOptions {
  statusUrls: string[];
  host?: string;
  port: number;
  pollMs?: number;
  title?: string;
}

export function startDashboard(options: DashboardOptions): Promise<ManagementServer> {
  if (options.statusUrls.length === 0) throw new Error('no daemons to watch');
  return startManagementServer({
    host: options.host,
    port: options.port,
    ring: ringFromStatusUrls(options.statusUrls),
    pollMs: options.pollMs,
    title: options.title ?? 'tspread ring dashboard',
  });
}

export function dashboardCommand(): Command {
  return new Command('dashboard')
    .description('serve a live web dashboard for a ring (polls each daemon\'s --http /status)')
    .option('-u, --status-url <url...>', 'a daemon\'s status URL, e.g. http://10.0.0.1:4880/status (repeatable)')
    .option('-c, --config <file>', 'spread.conf: watch every daemon it lists')
    .option('--http-port <port>', 'with -c: the port each daemon serves --http on', '4880')
    .option('-l, --listen <[host:]port>', 'where to serve the page', DASHBOARD_DEFAULT_LISTEN)
    .option('--poll <ms>', 'page refresh period', '1000')
    .action(async (flags: { statusUrl?: string[]; config?: string; httpPort: string; listen: string; poll: string }) => {
      const urls = [...(flags.statusUrl ?? [])];
      if (flags.config !== undefined) {
        const { loadConfig } = await import('../config/index.js');
        urls.push(...statusUrlsFromConfig(loadConfig(flags.config), Number(flags.httpPort)));
      }
      if (urls.length === 0) {
        console.error('dashboard: give --status-url URL... or -c spread.conf');
        process.exitCode = 2;
        return;
      }
      const listen = parseListenSpec(flags.listen);
      const server = await startDashboard({ statusUrls: urls, host: listen.host, port: listen.port, pollMs: Number(flags.poll) });
      console.log(`dashboard for ${urls.length} daemon(s) at ${server.url}`);
      const stop = () => void server.close().then(() => process.exit(0));
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
}
