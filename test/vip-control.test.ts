// The control socket: status over JSON lines, one instance per socket, a stale socket file replaced.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { VipAgent } from '../src/apps/vip/agent.js';
import { parseVipConfig } from '../src/apps/vip/config.js';
import { formatStatus, requestControl, serveControl } from '../src/apps/vip/control.js';

const dir = mkdtempSync(join(tmpdir(), 'tspread-vip-control-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('vip control socket', () => {
  const agent = new VipAgent({ config: parseVipConfig('VirtualInterfaces { eth0:10.0.0.1/24 eth0:10.0.0.2/24 }\n'), guard: false });

  it('answers status, refuses unknown addresses, and will not take a live instance’s socket', async () => {
    const path = join(dir, 'live.sock');
    const server = await serveControl(agent, path);
    try {
      const reply = await requestControl(path, { command: 'status' });
      expect(reply.ok).toBe(true);
      if (reply.ok) {
        expect(reply.status.me).toBeNull();
        expect(reply.status.local.map((l) => l.vif)).toEqual(['10.0.0.1', '10.0.0.2']);
        expect(formatStatus(reply.status)).toContain('me: (not connected)');
      }
      expect(await requestControl(path, { command: 'release', address: '10.9.9.9' })).toEqual({
        ok: false,
        error: '10.9.9.9 is no virtual address of this cluster',
      });
      await expect(serveControl(agent, path)).rejects.toThrow(`another tspread vip answers on ${path}`);
    } finally {
      server.close();
    }
  });

  it('replaces a socket file nobody answers on (left by a killed instance)', async () => {
    const path = join(dir, 'stale.sock');
    writeFileSync(path, '');
    const server = await serveControl(agent, path);
    server.close();
  });
});
