/**
 * shareTlsSessions() across real Node HTTPS servers, each on its own daemon of
 * a three-daemon ring: TLS 1.2 through the shared session cache, TLS 1.3 through
 * the farm's ticket key, a key rotation, and a round-robin farm of 1,000
 * handshakes that each resume the previous one's session.
 */
import type * as https from 'node:https';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type Session } from '../src/client/index.js';
import { shareTlsSessions, type SharedTlsSessions } from '../src/apps/session-cache/index.js';
import { ensureBuilt } from './fake-daemon/processes.js';
import { startDaemon, startRing, type StartedRing } from './helpers/daemon.js';
import { waitUntil } from './helpers/log-collectors.js';
import { handshake, startHttpsServer } from './helpers/tls-farm.js';
import { makeTestCertificate } from './helpers/tls-tools.js';

interface FarmServer {
  server: https.Server;
  port: number;
  shared: SharedTlsSessions;
}

let ring: StartedRing;
let dir: string;
const sessions: Session[] = [];
/** Per host: a server with tickets (group farm-t) and one with session IDs only (group farm-i). */
const ticketFarm: FarmServer[] = [];
const idFarm: FarmServer[] = [];

const GRACE_MS = 2500;
/** Writes reach the other members within about a millisecond; a test that resumes at once waits for that. */
const replicated = (farm: FarmServer[]): Promise<void> =>
  waitUntil(() => farm.every((member) => member.shared.sessions.stats.entries === farm[0]!.shared.sessions.stats.entries), () => 'entries differ');
const sameKeysEverywhere = (farm: FarmServer[]) => farm.every((member) => member.server.getTicketKeys().equals(farm[0]!.server.getTicketKeys()));

beforeAll(async () => {
  ensureBuilt();
  dir = mkdtempSync(join(tmpdir(), 'tspread-splash-node-'));
  const certificate = makeTestCertificate(dir);
  ring = await startRing({ count: 3 });
  for (const daemon of ring.daemons) {
    const session = await connect({ daemon: `${daemon.port}@127.0.0.1` });
    sessions.push(session);
    for (const [farm, group, sessionIds] of [[ticketFarm, 'farm-t', false], [idFarm, 'farm-i', true]] as const) {
      const { server, port, options } = await startHttpsServer(certificate, { sessionIds });
      farm.push({ server, port, shared: shareTlsSessions(server, { session, group, leadMs: 400, tlsOptions: options, graceMs: GRACE_MS }) });
    }
  }
  await waitUntil(
    () => [...ticketFarm, ...idFarm].every((member) => member.shared.sessions.stats.synced && member.shared.ticketKeyGroup.members.length === 3),
    () => 'farm not in sync',
  );
  await waitUntil(() => ticketFarm[0]!.shared.ticketKeys.keys.length > 0 && sameKeysEverywhere(ticketFarm), () => 'no shared ticket key');
}, 90_000);

afterAll(async () => {
  for (const member of [...ticketFarm, ...idFarm]) {
    await member.shared.stop();
    member.server.close();
  }
  await Promise.all(sessions.map((session) => session.disconnect()));
  await ring?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('Node HTTPS servers sharing TLS sessions', () => {
  it('TLS 1.2: a session started on A resumes on B through the shared cache', async () => {
    const first = await handshake(idFarm[0]!.port, 'TLSv1.2');
    expect(first.reused).toBe(false);
    expect(first.body).toContain('hello from the farm');
    await replicated(idFarm);
    const second = await handshake(idFarm[1]!.port, 'TLSv1.2', first.session);
    expect(second.reused).toBe(true);
    expect(second.body).toContain('hello from the farm');
    expect(idFarm[1]!.shared.sessions.stats.entries).toBeGreaterThan(0);
  });

  it('TLS 1.3: a ticket issued by A resumes on B (one farm key)', async () => {
    const first = await handshake(ticketFarm[0]!.port, 'TLSv1.3');
    expect(first.reused).toBe(false);
    const second = await handshake(ticketFarm[1]!.port, 'TLSv1.3', first.session);
    expect(second.reused).toBe(true);
  });

  it('TLS 1.3 across a ticket-key rotation: the farm switches together and resumes under the new key', async () => {
    const before = ticketFarm[0]!.server.getTicketKeys();
    const generator = ticketFarm.find((member) => member.shared.ticketKeyGroup.members[0] === member.shared.ticketKeyGroup.me)!;
    expect(generator.shared.rotateNow()).toBe(true);
    await waitUntil(() => !ticketFarm[0]!.server.getTicketKeys().equals(before) && sameKeysEverywhere(ticketFarm), () => 'rotation not applied');
    const first = await handshake(ticketFarm[2]!.port, 'TLSv1.3');
    const second = await handshake(ticketFarm[0]!.port, 'TLSv1.3', first.session);
    expect(second.reused).toBe(true);
    // The key stays in memory: the previous one is kept in the ring, never more than three.
    expect(generator.shared.ticketKeys.keys.length).toBeLessThanOrEqual(3);
  });

  it('TLS 1.3: a ticket sealed by the previous key resumes on another server during the grace period, not after', async () => {
    const before = ticketFarm[0]!.server.getTicketKeys();
    const old = await handshake(ticketFarm[0]!.port, 'TLSv1.3');
    const generator = ticketFarm.find((member) => member.shared.ticketKeyGroup.members[0] === member.shared.ticketKeyGroup.me)!;
    expect(generator.shared.rotateNow()).toBe(true);
    await waitUntil(() => !ticketFarm[0]!.server.getTicketKeys().equals(before) && sameKeysEverywhere(ticketFarm), () => 'rotation not applied');
    const routedBefore = ticketFarm[1]!.shared.grace!.routed;
    const inGrace = await handshake(ticketFarm[1]!.port, 'TLSv1.3', old.session);
    expect(inGrace.reused).toBe(true);
    expect(inGrace.body).toContain('hello from the farm');
    expect(ticketFarm[1]!.shared.grace!.routed).toBe(routedBefore + 1);
    await new Promise((resolve) => setTimeout(resolve, GRACE_MS + 200));
    const after = await handshake(ticketFarm[2]!.port, 'TLSv1.3', old.session);
    expect(after.reused).toBe(false);
    expect(after.body).toContain('hello from the farm');
  });

  for (const [farmName, version] of [['ticketFarm', 'TLSv1.3'], ['idFarm', 'TLSv1.2']] as const) {
    it(`${version}: 1,000 round-robin handshakes over three servers each resume the previous session (≥ 99 %)`, async () => {
      const farm = farmName === 'ticketFarm' ? ticketFarm : idFarm;
      let session: Buffer | undefined;
      let resumed = 0;
      for (let index = 0; index < 1000; index++) {
        const result = await handshake(farm[index % 3]!.port, version, session);
        if (result.reused) resumed += 1;
        session = result.session ?? session;
      }
      expect(resumed).toBeGreaterThanOrEqual(990);
    }, 120_000);
  }

  it("stop() leaves the caller's session, and the session's other listeners, working", async () => {
    const session = sessions[0]!;
    const { server } = await startHttpsServer({ certFile: join(dir, 'cert.pem'), keyFile: join(dir, 'key.pem') });
    const shared = shareTlsSessions(server, { session, group: 'farm-x' });
    const seen: string[] = [];
    const onMessage = (message: { groups: string[]; data: Uint8Array }) => {
      if (message.groups.includes('farm-u')) seen.push(Buffer.from(message.data).toString());
    };
    session.on('message', onMessage);
    session.join('farm-u');
    await shared.stop();
    server.close();
    session.multicast('farm-u', 'still here');
    await waitUntil(() => seen.includes('still here'), () => 'the caller lost its listener');
    session.off('message', onMessage);
    session.leave('farm-u');
  });

  it("a host whose daemon dies keeps answering from what it holds, and catches up once the daemon is back", async () => {
    const certificate = { certFile: join(dir, 'cert.pem'), keyFile: join(dir, 'key.pem') };
    const hosts = [ring.daemons[0]!, ring.daemons[2]!];
    const farm: FarmServer[] = [];
    for (const daemon of hosts) {
      const { server, port } = await startHttpsServer(certificate, { sessionIds: true });
      const shared = shareTlsSessions(server, { connect: () => connect({ daemon: `${daemon.port}@127.0.0.1` }), group: 'farm-o', leadMs: 400 });
      farm.push({ server, port, shared });
    }
    try {
      const [a, c] = farm as [FarmServer, FarmServer];
      await waitUntil(() => farm.every((member) => member.shared.sessions.stats.synced && member.shared.sessions.stats.members === 2), () => 'not in sync');
      const before = await handshake(a.port, 'TLSv1.2');
      await replicated(farm);
      expect((await handshake(c.port, 'TLSv1.2', before.session)).reused).toBe(true);

      const d3 = ring.daemons[2]!;
      d3.process.kill('SIGKILL');
      await d3.stop();
      await waitUntil(() => !c.shared.sessions.stats.connected, () => 'C still connected');
      const held = await handshake(c.port, 'TLSv1.2', before.session);
      expect(held.reused).toBe(true);
      expect(held.body).toContain('hello from the farm');
      const during = await handshake(a.port, 'TLSv1.2');
      const full = await handshake(c.port, 'TLSv1.2', during.session);
      expect(full.reused).toBe(false);
      expect(full.body).toContain('hello from the farm');

      ring.daemons[2] = await startDaemon({ port: d3.port, config: ring.config, args: ['-n', 'd3'] });
      await waitUntil(() => c.shared.sessions.stats.connected && c.shared.sessions.stats.members === 2, () => 'C did not rejoin', 30_000);
      await waitUntil(() => c.shared.sessions.stats.synced && c.shared.sessions.stats.entries === a.shared.sessions.stats.entries, () => 'C did not catch up', 30_000);
      expect((await handshake(c.port, 'TLSv1.2', during.session)).reused).toBe(true);
    } finally {
      for (const member of farm) {
        await member.shared.stop();
        member.server.close();
      }
    }
  }, 60_000);
});
