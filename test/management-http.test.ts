// Prometheus text derived from a snapshot, and the management HTTP server's routes.
import { afterEach, describe, expect, it } from 'vitest';
import { metricsText } from '../src/management/metrics.js';
import { parseListenSpec, startManagementServer, type ManagementServer, type RingView } from '../src/management/http.js';
import { D1_VID, D2_VID, sampleSnapshot } from './management-fixtures.js';

describe('metrics text', () => {
  it('exposes the snapshot\'s numbers with daemon and group labels', async () => {
    const text = await metricsText(sampleSnapshot());
    const lines = text.split('\n');
    const has = (line: string) => expect(lines).toContain(line);
    has('# TYPE tspread_messages_delivered_total counter');
    has('tspread_messages_delivered_total{daemon="d1"} 47');
    has('tspread_bytes_delivered_total{daemon="d1"} 920');
    has('tspread_messages_received_total{daemon="d1"} 40');
    has('tspread_bytes_received_total{daemon="d1"} 4000');
    has('tspread_ring_retransmissions_total{daemon="d1"} 7');
    has('tspread_ring_token_rounds_total{daemon="d1"} 148');
    has('tspread_ring_token_rounds_per_second{daemon="d1"} 5.75');
    has('tspread_sessions{daemon="d1"} 3');
    has('tspread_groups{daemon="d1"} 2');
    has('tspread_ring_members{daemon="d1"} 2');
    has('tspread_ring_window{daemon="d1"} 160');
    has('tspread_ring_personal_window{daemon="d1"} 20');
    has('tspread_ring_state_code{daemon="d1"} 1');
    has('# TYPE tspread_group_messages_total counter');
    has('tspread_group_messages_total{group="chat",daemon="d1"} 42');
    has('tspread_group_messages_total{group="news",daemon="d1"} 5');
    has('tspread_group_members{group="chat",daemon="d1"} 2');
    has('tspread_group_local_members{group="chat",daemon="d1"} 1');
    has('tspread_group_bytes_total{group="chat",daemon="d1"} 420');
    has(`tspread_ring_member{member="d1",vid="${D1_VID}",daemon="d1"} 1`);
    has(`tspread_ring_member{member="d2",vid="${D2_VID}",daemon="d1"} 1`);
    has(`tspread_ring_info{ring_id="${D1_VID}:1700000001",leader_vid="${D1_VID}",state="op",daemon="d1"} 1`);
    has(`tspread_info{version="0.1.0",vid="${D1_VID}",config_hash="1458666200",config_source="test.conf",daemon="d1"} 1`);
  });
  it('drops groups that are gone and keeps scrapes independent', async () => {
    const first = await metricsText(sampleSnapshot({ messages: 1 }));
    const snapshot = sampleSnapshot({ messages: 2 });
    snapshot.groups = snapshot.groups.filter((group) => group.name === 'chat');
    const second = await metricsText(snapshot);
    expect(first).toContain('group="news"');
    expect(second).not.toContain('group="news"');
    expect(second).toContain('tspread_group_messages_total{group="chat",daemon="d1"} 2');
  });
});

describe('management HTTP server', () => {
  let server: ManagementServer | null = null;
  afterEach(async () => {
    await server?.close();
    server = null;
  });

  it('serves /status, /metrics, /ring, the page and Chart.js', async () => {
    let messages = 10;
    server = await startManagementServer({ port: 25010, snapshot: () => sampleSnapshot({ messages }) });
    expect(server.url).toBe('http://127.0.0.1:25010/');

    const status = await fetch(new URL('status', server.url));
    expect(status.status).toBe(200);
    expect(status.headers.get('content-type')).toMatch(/application\/json/);
    expect(await status.json()).toEqual(sampleSnapshot({ messages: 10 }));

    messages = 11;
    const metrics = await fetch(new URL('metrics', server.url));
    expect(metrics.headers.get('content-type')).toMatch(/^text\/plain; version=0.0.4/);
    expect(await metrics.text()).toContain('tspread_group_messages_total{group="chat",daemon="d1"} 11');

    const ring = (await (await fetch(new URL('ring', server.url))).json()) as RingView;
    expect(ring.daemons).toHaveLength(1);
    expect(ring.daemons[0]).toMatchObject({ source: 'self', ok: true });
    expect(ring.daemons[0].snapshot?.groups[0].messages).toBe(11);

    const page = await (await fetch(server.url)).text();
    expect(page).toContain('<canvas id="group-chart">');
    expect(page).toContain('<script src="chart.umd.js">');
    const chart = await fetch(new URL('chart.umd.js', server.url));
    expect(chart.status).toBe(200);
    expect(await chart.text()).toContain('Chart.js');

    expect((await fetch(new URL('nope', server.url))).status).toBe(404);
    expect((await fetch(server.url, { method: 'POST' })).status).toBe(405);
    expect(await (await fetch(new URL('healthz', server.url))).text()).toBe('ok\n');
  });

  it('reports a failing snapshot as a 500 and an unreachable daemon in /ring', async () => {
    server = await startManagementServer({
      port: 0,
      snapshot: () => {
        throw new Error('core not ready');
      },
    });
    expect((await fetch(new URL('status', server.url))).status).toBe(500);
    const ring = (await (await fetch(new URL('ring', server.url))).json()) as RingView;
    expect(ring.daemons[0]).toMatchObject({ ok: false, error: 'Error: core not ready' });
  });

  it('serves only the page and /ring when it watches a ring', async () => {
    const view: RingView = { generatedAtMs: 1, daemons: [] };
    server = await startManagementServer({ port: 0, ring: () => view });
    expect(await (await fetch(new URL('ring', server.url))).json()).toEqual(view);
    expect((await fetch(new URL('status', server.url))).status).toBe(404);
    expect((await fetch(new URL('metrics', server.url))).status).toBe(404);
  });

  it('parses listen addresses', () => {
    expect(parseListenSpec('8080')).toEqual({ host: '127.0.0.1', port: 8080 });
    expect(parseListenSpec('0.0.0.0:9100')).toEqual({ host: '0.0.0.0', port: 9100 });
    expect(parseListenSpec('[::1]:9100')).toEqual({ host: '::1', port: 9100 });
    expect(() => parseListenSpec('x:y')).toThrow(/bad listen address/);
    expect(() => parseListenSpec('70000')).toThrow(/bad listen address/);
  });
});
