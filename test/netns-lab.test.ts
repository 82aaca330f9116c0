// The namespace lab itself: hosts reach each other, a partition cuts them apart, heal restores.
import { afterAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { NetnsLab, netnsAvailable } from './helpers/netns.js';

const probe = `
const dgram = require('node:dgram');
const [mode, host, port] = process.argv.slice(1);
const socket = dgram.createSocket('udp4');
if (mode === 'listen') {
  socket.bind(Number(port), host, () => console.log('ready'));
  socket.on('message', (m) => { console.log(String(m)); process.exit(0); });
  setTimeout(() => process.exit(3), 1500);
} else {
  socket.send('hello', Number(port), host, () => socket.close());
}
`;

describe('network namespace lab', () => {
  const unavailable = netnsAvailable();
  let lab: NetnsLab | undefined;
  afterAll(() => lab?.destroy());

  it('connects hosts, partitions and heals', async () => {
    expect(unavailable, unavailable ?? '').toBeNull();
    lab = NetnsLab.create(2);
    const send = async (): Promise<string> => {
      const listener = lab!.spawn(1, process.execPath, ['-e', probe, 'listen', lab!.address(1), '39999']);
      let output = '';
      listener.stdout!.on('data', (chunk) => (output += chunk));
      await new Promise((resolve) => listener.stdout!.once('data', resolve));
      execFileSync('ip', ['netns', 'exec', lab!.hostNs(0), process.execPath, '-e', probe, 'send', lab!.address(1), '39999']);
      await new Promise((resolve) => listener.once('exit', resolve));
      return output;
    };
    expect(await send()).toContain('hello');
    lab.partition([[0], [1]]);
    expect(await send()).not.toContain('hello');
    lab.heal();
    expect(await send()).toContain('hello');
  });
});
