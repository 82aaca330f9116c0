// vip.conf: wackamole's directives, and errors that name the line.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseVipConfig } from '../src/apps/vip/config.js';
import { CLI_PATH } from './helpers/daemon.js';

const SAMPLE = `# three web servers
Spread = 4803
SpreadRetryInterval = 2s
Group = web
Control = /run/vip-web.sock
Mature = 500ms
Quorum = 2
Balance {
  Interval = 4s
  AcquisitionsPerRound = 1
}
arp-cache = 90s
Prefer { eth0:10.1.0.11/24 }
VirtualInterfaces {
  { eth0:10.1.0.10/24 eth0:10.1.0.11/24 }
  eth0:10.1.0.12/24
}
Notify {
  eth0:10.1.0.1/32
  arp-cache
}
Up = /etc/vip/up
Down = /etc/vip/down
`;

describe('vip.conf', () => {
  it('reads every directive', () => {
    const config = parseVipConfig(SAMPLE);
    expect(config).toMatchObject({
      spread: '4803',
      spreadRetryMs: 2000,
      group: 'web',
      control: '/run/vip-web.sock',
      matureMs: 500,
      quorum: 2,
      balanceIntervalMs: 4000,
      acquisitionsPerRound: 1,
      prefer: ['10.1.0.10'],
      notify: [{ device: 'eth0', address: '10.1.0.1', prefix: 32 }],
      notifyArpCache: true,
      up: '/etc/vip/up',
      down: '/etc/vip/down',
    });
    expect(config.interfaces).toEqual([
      {
        id: '10.1.0.10',
        addresses: [
          { device: 'eth0', address: '10.1.0.10', prefix: 24 },
          { device: 'eth0', address: '10.1.0.11', prefix: 24 },
        ],
      },
      { id: '10.1.0.12', addresses: [{ device: 'eth0', address: '10.1.0.12', prefix: 24 }] },
    ]);
  });

  it('AcquisitionsPerRound = all, Prefer None, defaults', () => {
    const config = parseVipConfig('Balance { AcquisitionsPerRound = all }\nPrefer None\nVirtualInterfaces { eth0:10.0.0.5 }\n');
    expect(config.acquisitionsPerRound).toBe(Infinity);
    expect(config.prefer).toEqual([]);
    expect(config.interfaces[0].addresses[0].prefix).toBe(32);
    expect(config.matureMs).toBe(5000);
  });

  it.each([
    ['Spread = 4803\nBogus = 1\n', 'vip.conf:2: unknown directive "Bogus"'],
    ['VirtualInterfaces {\n  eth0:10.0.0.300/24\n}\n', 'vip.conf:2: "eth0:10.0.0.300/24" is not dev:address/prefix'],
    ['VirtualInterfaces {\n  eth0:10.0.0.1/24\n  eth1:10.0.0.1/24\n}\n', 'vip.conf:3: 10.0.0.1 is already a virtual address (line 2)'],
    ['Mature = soon\nVirtualInterfaces { eth0:10.0.0.1 }\n', 'vip.conf:1: "soon" is not a duration'],
    ['Balance {\n  Speed = 3\n}\n', 'vip.conf:2: unknown Balance setting "Speed"'],
    ['VirtualInterfaces { eth0:10.0.0.1 }\nPrefer { 10.0.0.9 }\n', 'vip.conf:2: Prefer names 10.0.0.9, which is no virtual address'],
    ['Group = web\n', 'vip.conf:1: no VirtualInterfaces'],
    ['VirtualInterfaces {\n  eth0:10.0.0.1\n', 'vip.conf:2: expected "}", found the end of the file'],
  ])('%j → %s', (text, message) => {
    expect(() => parseVipConfig(text)).toThrow(message);
  });
});

describe('tspread vip (command line)', () => {
  const run = (args: string[]) => spawnSync(process.execPath, [CLI_PATH, 'vip', ...args], { encoding: 'utf8' });

  it('--help names the options', () => {
    const result = run(['--help']);
    expect(result.status).toBe(0);
    for (const option of ['--config', '--status', '--release', '--prefer', '--metrics', '--socket-dir']) expect(result.stdout).toContain(option);
  });

  it('a bad vip.conf: the error names the file and line, exit status 2', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tspread-vip-'));
    try {
      const file = join(dir, 'vip.conf');
      writeFileSync(file, 'Group = web\nVirtualInterfaces {\n  eth0:10.0.0.1/24\n  eth0:nonsense\n}\n');
      const result = run(['-c', file]);
      expect(result.status).toBe(2);
      expect(result.stderr).toContain(`${file}:4: "eth0:nonsense" is not dev:address/prefix`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('without -c: --status asks the default control socket, running an instance needs -c', () => {
    const status = run(['--status', '--control', '/nonexistent/vip.sock']);
    expect(status.status).toBe(1);
    expect(status.stderr).toContain('cannot reach tspread vip on /nonexistent/vip.sock');
    const instance = run([]);
    expect(instance.status).toBe(1);
    expect(instance.stderr).toContain('running an instance needs its configuration: tspread vip -c vip.conf');
  });

  it('--status without a running instance says which socket it tried', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tspread-vip-'));
    try {
      const file = join(dir, 'vip.conf');
      writeFileSync(file, `Control = ${dir}/none.sock\nVirtualInterfaces { eth0:10.0.0.1/24 }\n`);
      const result = run(['-c', file, '--status']);
      expect(result.status).toBe(1);
      expect(result.stderr).toContain(`cannot reach tspread vip on ${dir}/none.sock`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
