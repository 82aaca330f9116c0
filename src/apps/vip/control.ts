/**
 * The control socket (wackamole's `Control`): a Unix socket on which the running
 * instance answers one JSON request per line — status, release, prefer — so that
 * `tspread vip --status` and friends work from a shell on the host.
 */
import { existsSync, unlinkSync } from 'node:fs';
import net from 'node:net';
import { createInterface } from 'node:readline';
import type { VipAgent, VipStatus } from './agent.js';

export type ControlRequest = { command: 'status' } | { command: 'release'; address: string } | { command: 'prefer'; address: string };
export type ControlReply = { ok: true; status: VipStatus } | { ok: false; error: string };

/** True when something accepts connections on the Unix socket `path`. */
function answering(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.createConnection(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
}

/** Listens on `path`; a socket file left by a killed instance is replaced, a live instance's is not. */
export async function serveControl(agent: VipAgent, path: string): Promise<net.Server> {
  if (existsSync(path)) {
    if (await answering(path)) throw new Error(`another tspread vip answers on ${path} (Control): one instance per host`);
    unlinkSync(path);
  }
  const server = net.createServer((socket) => {
    socket.on('error', () => undefined);
    createInterface({ input: socket }).on('line', (line) => {
      let reply: ControlReply;
      try {
        const request = JSON.parse(line) as ControlRequest;
        if (request.command === 'release') agent.releaseAddress(request.address);
        else if (request.command === 'prefer') agent.preferAddress(request.address);
        else if (request.command !== 'status') throw new Error(`unknown command ${JSON.stringify((request as { command?: unknown }).command)}`);
        reply = { ok: true, status: agent.status() };
      } catch (error) {
        reply = { ok: false, error: (error as Error).message };
      }
      socket.end(`${JSON.stringify(reply)}\n`);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server;
}

/** Sends one request to the instance listening on `path`. */
export function requestControl(path: string, request: ControlRequest, timeoutMs = 5000): Promise<ControlReply> {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection(path);
    const timer = setTimeout(() => socket.destroy(new Error(`no answer on ${path} within ${timeoutMs} ms`)), timeoutMs);
    let text = '';
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(`${JSON.stringify(request)}\n`));
    socket.on('data', (chunk: string) => (text += chunk));
    socket.on('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`cannot reach tspread vip on ${path}: ${error.message}`));
    });
    socket.on('end', () => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(text) as ControlReply);
      } catch {
        reject(new Error(`unreadable answer on ${path}`));
      }
    });
  });
}

/** The status as a table: one line per member with what it holds. */
export function formatStatus(status: VipStatus): string {
  const lines = [`me: ${status.me ?? '(not connected)'}  view: ${status.view ?? '-'}${status.synced ? '' : '  (exchanging state)'}`];
  const width = Math.max(6, ...status.members.map((m) => m.name.length));
  lines.push(`${'member'.padEnd(width)}  mature  holds`);
  for (const member of status.members) {
    const flags = [
      ...member.prefers.map((p) => `prefers ${p}`),
      ...member.refuses.map((r) => `refuses ${r}`),
    ];
    lines.push(`${member.name.padEnd(width)}  ${(member.mature ? 'yes' : 'no').padEnd(6)}  ${member.holds.join(' ') || '-'}${flags.length > 0 ? `  (${flags.join(', ')})` : ''}`);
  }
  const unheld = Object.entries(status.assignment).filter(([vif]) => !status.members.some((m) => m.holds.includes(vif)));
  if (unheld.length > 0) lines.push(`not held: ${unheld.map(([vif, to]) => (to === null ? vif : `${vif} (going to ${to})`)).join(' ')}`);
  lines.push(`this host: ${status.local.filter((l) => l.held).map((l) => l.addresses.join(' ')).join(' ') || 'nothing'}`);
  for (const error of status.errors) lines.push(`error: ${error}`);
  return lines.join('\n');
}
