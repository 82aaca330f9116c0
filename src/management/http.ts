/**
 * The management HTTP server (node:http): JSON status, Prometheus metrics and the live
 * dashboard. A daemon mounts it with one call, `startManagementServer({ port, host, snapshot })`;
 * `tspread dashboard` mounts the same routes over a whole ring (`ring` option).
 *
 * Routes (GET/HEAD only):
 *   /               the dashboard page
 *   /chart.umd.js   Chart.js, served from node_modules (no CDN)
 *   /status         this daemon's DaemonStatusSnapshot as JSON (404 on a ring-only server)
 *   /ring           RingView JSON: every watched daemon's snapshot or error (the page polls it)
 *   /metrics        Prometheus text (404 on a ring-only server)
 *   /healthz        "ok"
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import type { DaemonStatusSnapshot } from '../daemon/status-types.js';
import { METRICS_CONTENT_TYPE, metricsText } from './metrics.js';
import { dashboardHtml } from './dashboard-page.js';

/** One watched daemon as the dashboard sees it. */
export interface DaemonView {
  /** Where the snapshot came from: a /status URL, or 'self' for the serving daemon. */
  source: string;
  ok: boolean;
  error?: string;
  snapshot?: DaemonStatusSnapshot;
  fetchedAtMs: number;
}

export interface RingView {
  generatedAtMs: number;
  daemons: DaemonView[];
}

export interface ManagementServerOptions {
  /** TCP port; 0 picks a free one (see `url` on the result). */
  port: number;
  /** Listen address; default 127.0.0.1. Use the daemon's configured address to let other hosts scrape. */
  host?: string;
  /** This daemon's status; enables /status and /metrics. */
  snapshot?: () => DaemonStatusSnapshot;
  /** What /ring reports; defaults to the one daemon behind `snapshot`. */
  ring?: () => RingView | Promise<RingView>;
  /** Dashboard page title and poll period. */
  title?: string;
  pollMs?: number;
}

export interface ManagementServer {
  server: Server;
  /** Base URL, e.g. http://127.0.0.1:25001/ */
  url: string;
  port: number;
  close(): Promise<void>;
}

let chartScript: Promise<Buffer> | null = null;

/** Chart.js UMD build from the installed package. */
export function chartJsPath(): string {
  const require = createRequire(import.meta.url);
  return path.join(path.dirname(require.resolve('chart.js')), 'chart.umd.js');
}

function loadChartScript(): Promise<Buffer> {
  chartScript ??= readFile(chartJsPath());
  return chartScript;
}

function send(response: ServerResponse, status: number, contentType: string, body: string | Buffer, head: boolean): void {
  response.writeHead(status, {
    'content-type': contentType,
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
  });
  response.end(head ? undefined : body);
}

function sendJson(response: ServerResponse, value: unknown, head: boolean): void {
  send(response, 200, 'application/json; charset=utf-8', `${JSON.stringify(value)}\n`, head);
}

/** The request handler, for mounting into another server. */
export function managementHandler(options: Omit<ManagementServerOptions, 'port' | 'host'>) {
  const { snapshot } = options;
  const ring =
    options.ring ??
    ((): RingView => {
      const now = Date.now();
      if (!snapshot) return { generatedAtMs: now, daemons: [] };
      try {
        return { generatedAtMs: now, daemons: [{ source: 'self', ok: true, snapshot: snapshot(), fetchedAtMs: now }] };
      } catch (error) {
        return { generatedAtMs: now, daemons: [{ source: 'self', ok: false, error: String(error), fetchedAtMs: now }] };
      }
    });
  const page = dashboardHtml({ title: options.title ?? 'tspread dashboard', pollMs: options.pollMs ?? 1000 });

  return async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const head = request.method === 'HEAD';
    if (request.method !== 'GET' && !head) {
      response.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    const route = new URL(request.url ?? '/', 'http://localhost').pathname;
    try {
      switch (route) {
        case '/':
        case '/index.html':
          return send(response, 200, 'text/html; charset=utf-8', page, head);
        case '/chart.umd.js':
          return send(response, 200, 'text/javascript; charset=utf-8', await loadChartScript(), head);
        case '/healthz':
          return send(response, 200, 'text/plain; charset=utf-8', 'ok\n', head);
        case '/ring':
          return sendJson(response, await ring(), head);
        case '/status':
          if (!snapshot) break;
          return sendJson(response, snapshot(), head);
        case '/metrics':
          if (!snapshot) break;
          return send(response, 200, METRICS_CONTENT_TYPE, await metricsText(snapshot()), head);
      }
      send(response, 404, 'text/plain; charset=utf-8', 'not found\n', head);
    } catch (error) {
      if (!response.headersSent) send(response, 500, 'text/plain; charset=utf-8', `${String(error)}\n`, head);
      else response.destroy();
    }
  };
}

/** Starts the management server; resolves once it listens. */
export async function startManagementServer(options: ManagementServerOptions): Promise<ManagementServer> {
  const host = options.host ?? '127.0.0.1';
  const handler = managementHandler(options);
  const server = createServer((request, response) => void handler(request, response));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const urlHost = host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host;
  return {
    server,
    port,
    url: `http://${urlHost}:${port}/`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Parses `--http` values: "PORT" or "HOST:PORT" or "[v6]:PORT". */
export function parseListenSpec(text: string, defaultHost = '127.0.0.1'): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]:|([^:]+):)?(\d+)$/.exec(text.trim());
  const port = match ? Number(match[3]) : NaN;
  if (!match || !Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`bad listen address '${text}' (PORT or HOST:PORT)`);
  return { host: match[1] ?? match[2] ?? defaultHost, port };
}
