/**
 * Client links and access control with real daemon processes (docs/security.md): TLS with
 * and without client certificates, RequireTls, PWORD passwords, CERT identity, the
 * access-control file (connect, join, multicast) and its reload, and the loopback-only
 * default. Every refusal carries Spread's code: REJECT_AUTH at connect, a reject message
 * (§3.6) for a join or multicast.
 */
import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, ErrorCode, type Message, type Session } from '../src/client/index.js';
import type { ConnectOptions } from '../src/client/session.js';
import { defaultConfig } from '../src/config/defaults.js';
import { clientBindAddresses } from '../src/daemon/daemon.js';
import { CLI_PATH, freePort, soloConfig, startDaemon, type StartedDaemon } from './helpers/daemon.js';
import { makeTestPki, writePasswords, type TestPki } from './helpers/security-files.js';

let scratch: string;
let pki: TestPki;
const daemons: StartedDaemon[] = [];
const sessions: Session[] = [];

beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), 'tspread-security-clients-'));
  pki = makeTestPki(scratch);
  writePasswords(join(scratch, 'passwords'), { alice: 'correct horse' });
  // bob's line comes from the CLI, as docs/security.md tells users to make it.
  const bobLine = execFileSync(process.execPath, [CLI_PATH, 'password-hash', 'bob'], { input: 'battery staple\n', encoding: 'utf8' });
  appendFileSync(join(scratch, 'passwords'), bobLine);
});

afterAll(async () => {
  await Promise.all(sessions.map((session) => session.disconnect().catch(() => undefined)));
  await Promise.all(daemons.map((daemon) => daemon.stop()));
  rmSync(scratch, { recursive: true, force: true });
});

/** A ring of one with these extra spread.conf lines; returns it and its TLS port (when asked for). */
async function soloDaemon(lines: (tlsPort: number) => string[]): Promise<{ daemon: StartedDaemon; tlsPort: number }> {
  const port = await freePort();
  const tlsPort = await freePort();
  const daemon = await startDaemon({ port, config: soloConfig(port, lines(tlsPort)) });
  daemons.push(daemon);
  return { daemon, tlsPort };
}

async function open(options: ConnectOptions): Promise<Session> {
  const session = await connect({ timeoutMs: 10_000, ...options });
  sessions.push(session);
  return session;
}

/** The error code a connect fails with (throws if it succeeds). */
async function refusal(options: ConnectOptions): Promise<number> {
  try {
    const session = await open(options);
    throw new Error(`connect succeeded as ${session.privateGroup}`);
  } catch (error) {
    const code = (error as { code?: number }).code;
    if (code === undefined) throw error;
    return code;
  }
}

/** Next message of `kind` (that `where` accepts), bounded in time. */
async function next(session: Session, kind: Message['kind'], timeoutMs = 10_000, where: (message: Message) => boolean = () => true): Promise<Message> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${kind} message in ${timeoutMs} ms`)), timeoutMs);
    const event = kind === 'data' ? 'message' : kind;
    const listener = (message: Message) => {
      if (!where(message)) return;
      clearTimeout(timer);
      session.off(event as 'message', listener);
      resolve(message);
    };
    session.on(event as 'message', listener);
  });
}

const tlsLines = (tlsPort: number, extra: string[] = []) => [
  `TlsPort = ${tlsPort}`,
  `TlsCertificateFile = "${pki.daemonCertFile}"`,
  `TlsKeyFile = "${pki.daemonKeyFile}"`,
  `TlsCaFile = "${pki.caFile}"`,
  ...extra,
];

describe('TLS client links', () => {
  it('carries a session over TLS next to plain TCP; a client that does not trust the daemon cannot connect', async () => {
    const { daemon, tlsPort } = await soloDaemon((tls) => tlsLines(tls));
    const secure = await open({ daemon: `${tlsPort}@127.0.0.1`, privateName: 'tls1', tls: { ca: readFileSync(pki.caFile) } });
    const plain = await open({ daemon: `${daemon.port}@127.0.0.1`, privateName: 'plain1' });
    secure.join('mixed');
    await next(secure, 'membership');
    plain.multicast('mixed', 'over plain TCP');
    const message = await next(secure, 'data');
    expect(message.kind === 'data' && Buffer.from(message.data).toString()).toBe('over plain TCP');
    // Not the CA that signed the daemon's certificate: the TLS handshake fails, COULD_NOT_CONNECT.
    const stranger = makeTestPki(mkdtempSync(join(scratch, 'other-ca-')));
    expect(await refusal({ daemon: `${tlsPort}@127.0.0.1`, tls: { ca: readFileSync(stranger.caFile) } })).toBe(ErrorCode.COULD_NOT_CONNECT);
  }, 60_000);

  it('RequireTls closes plain TCP but keeps TLS and the Unix socket', async () => {
    const { daemon, tlsPort } = await soloDaemon((tls) => tlsLines(tls, ['RequireTls = yes']));
    expect(await refusal({ daemon: `${daemon.port}@127.0.0.1` })).toBe(ErrorCode.COULD_NOT_CONNECT);
    await open({ daemon: `${tlsPort}@127.0.0.1`, tls: { ca: readFileSync(pki.caFile) } });
    await open({ daemon: String(daemon.port), unixSocketDir: join(daemon.unixPath, '..') });
  }, 60_000);

  it('TlsClientCertificates = require: no certificate is REJECT_AUTH; a CA-signed one is the identity the access rules see', async () => {
    const acl = join(scratch, 'cert.acl');
    writeFileSync(acl, ['allow cert:ops-* join ops.*', 'deny * join ops.*', 'default allow', ''].join('\n'));
    const { tlsPort } = await soloDaemon((tls) => tlsLines(tls, ['TlsClientCertificates = require', `AccessControlFile = "${acl}"`]));
    const ca = readFileSync(pki.caFile);
    const daemon = `${tlsPort}@127.0.0.1`;
    expect(await refusal({ daemon, tls: { ca } })).toBe(ErrorCode.REJECT_AUTH);
    const ops = pki.client('ops-alice');
    const dev = pki.client('dev-bob');
    const alice = await open({ daemon, privateName: 'alice', tls: { ca, cert: readFileSync(ops.certFile), key: readFileSync(ops.keyFile) } });
    const bob = await open({ daemon, privateName: 'bob', tls: { ca, cert: readFileSync(dev.certFile), key: readFileSync(dev.keyFile) } });
    alice.join('ops.pager');
    expect((await next(alice, 'membership')).kind).toBe('membership');
    bob.join('ops.pager');
    const reject = await next(bob, 'reject');
    expect(reject.kind === 'reject' && reject.oldService).toBe('join');
  }, 60_000);
});

describe('authentication methods', () => {
  it('RequiredAuthMethods = PWORD refuses a client without a password, or with a wrong one, with REJECT_AUTH', async () => {
    const { daemon } = await soloDaemon(() => [
      'AllowedAuthMethods = "NULL PWORD"',
      'RequiredAuthMethods = "PWORD"',
      `PasswordFile = "${join(scratch, 'passwords')}"`,
    ]);
    const at = `${daemon.port}@127.0.0.1`;
    expect(await refusal({ daemon: at })).toBe(ErrorCode.REJECT_AUTH);
    expect(await refusal({ daemon: at, password: { user: 'alice', password: 'wrong' } })).toBe(ErrorCode.REJECT_AUTH);
    expect(await refusal({ daemon: at, password: { user: 'mallory', password: 'correct horse' } })).toBe(ErrorCode.REJECT_AUTH);
    const alice = await open({ daemon: at, privateName: 'alice', password: { user: 'alice', password: 'correct horse' } });
    expect(alice.privateGroup).toMatch(/^#alice#/);
    // The daemon is unaffected by the refusals: a second user gets in too.
    await open({ daemon: at, password: { user: 'bob', password: 'battery staple' }, authMethods: ['NULL'] });
  }, 60_000);

  it('RequiredAuthMethods = CERT refuses plain TCP and certificate-less TLS sessions', async () => {
    const { daemon, tlsPort } = await soloDaemon((tls) =>
      tlsLines(tls, ['TlsClientCertificates = request', 'AllowedAuthMethods = "NULL"', 'RequiredAuthMethods = "CERT"']),
    );
    const ca = readFileSync(pki.caFile);
    expect(await refusal({ daemon: `${daemon.port}@127.0.0.1` })).toBe(ErrorCode.REJECT_AUTH);
    expect(await refusal({ daemon: `${tlsPort}@127.0.0.1`, tls: { ca } })).toBe(ErrorCode.REJECT_AUTH);
    const svc = pki.client('svc');
    await open({ daemon: `${tlsPort}@127.0.0.1`, tls: { ca, cert: readFileSync(svc.certFile), key: readFileSync(svc.keyFile) } });
  }, 60_000);
});

describe('access-control file', () => {
  it('denies a join and a multicast with reject messages, leaves everyone else alone, and reloads on SIGHUP', async () => {
    const acl = join(scratch, 'groups.acl');
    writeFileSync(acl, ['deny name:guest* connect', 'deny * join secret.*', 'deny name:mallory multicast *', ''].join('\n'));
    const { daemon } = await soloDaemon(() => [`AccessControlFile = "${acl}"`]);
    const at = `${daemon.port}@127.0.0.1`;
    expect(await refusal({ daemon: at, privateName: 'guest7' })).toBe(ErrorCode.REJECT_AUTH);
    const alice = await open({ daemon: at, privateName: 'alice' });
    const mallory = await open({ daemon: at, privateName: 'mallory' });
    alice.join('secret.plans');
    const joinReject = await next(alice, 'reject');
    expect(joinReject.kind === 'reject' && joinReject.oldService).toBe('join');
    alice.join('chat');
    mallory.join('chat');
    await next(alice, 'membership');
    await next(mallory, 'membership');
    mallory.multicast('chat', 'from mallory');
    const multicastReject = await next(mallory, 'reject');
    expect(multicastReject.kind === 'reject' && multicastReject.oldService).toBe('agreed');
    // Everyone else's traffic flows; mallory still receives.
    alice.multicast('chat', 'from alice');
    const atMallory = await next(mallory, 'data');
    expect(atMallory.kind === 'data' && atMallory.sender).toBe(alice.privateGroup);

    writeFileSync(acl, ['deny name:mallory multicast *', ''].join('\n'));
    daemon.process.kill('SIGHUP');
    await daemon.waitForOutput('access-control file reloaded', 10_000);
    alice.join('secret.plans');
    const joined = await next(alice, 'membership', 10_000, (message) => message.kind === 'membership' && message.group === 'secret.plans');
    expect(joined.kind === 'membership' && joined.group).toBe('secret.plans');
    await open({ daemon: at, privateName: 'guest8' });
  }, 60_000);

  it('a file that no longer parses is logged and the previous rules stay in force', async () => {
    const acl = join(scratch, 'broken.acl');
    writeFileSync(acl, 'deny * join locked\n');
    const { daemon } = await soloDaemon(() => [`AccessControlFile = "${acl}"`]);
    writeFileSync(acl, 'deny everybody join locked\n');
    daemon.process.kill('SIGHUP');
    await daemon.waitForOutput('security file not reloaded', 10_000);
    const carol = await open({ daemon: `${daemon.port}@127.0.0.1`, privateName: 'carol' });
    carol.join('locked');
    expect((await next(carol, 'reject')).kind).toBe('reject');
  }, 60_000);
});

describe('defaults', () => {
  it('the default one-daemon configuration listens for clients on loopback only', () => {
    const config = defaultConfig();
    expect(clientBindAddresses(config, config.daemons[0])).toEqual(['127.0.0.1']);
  });
});
