/**
 * shareTlsSessions(): lets every Node TLS/HTTPS server of a farm resume the
 * sessions another one started.
 *
 * - Session IDs (TLS 1.2, and any server run with SSL_OP_NO_TICKET): the
 *   server's `newSession`/`resumeSession` events read and write a SharedMap on
 *   `group`. A new session's handshake completes once the group has ordered it,
 *   so the next handshake on another member finds it.
 * - Session tickets (TLS 1.3 by default, TLS 1.2 too): one ticket key for the
 *   whole farm on `<group>.tk`, replaced every `rotateMs`. Node decrypts tickets
 *   with one key only, so the previous key cannot stay accepted after a switch;
 *   what the farm can do is switch at the same instant everywhere: each key is
 *   announced `leadMs` before it takes over. With `tlsOptions` (the options the
 *   server was created with), tickets sealed by the previous key stay accepted
 *   for `graceMs` through a spare context (ticket-grace.ts); without them they
 *   cost one full handshake. See docs/session-cache.md.
 */
import type * as tls from 'node:tls';
import type { Session } from '../../client/index.js';
import { silentLogger, type Logger } from '../shared/logger.js';
import { ReplicatedGroup } from '../shared/replicated-group.js';
import { sharedConnector } from '../shared/shared-connector.js';
import { SharedMap } from '../shared/shared-map.js';
import { TicketGrace } from './ticket-grace.js';
import { newTicketKey, TicketKeyRing } from './ticket-keys.js';

export interface ShareTlsSessionsOptions {
  /** An open session (kept by the caller; when it closes, the server goes on with what it holds)… */
  session?: Session;
  /** …or how to open sessions, again after each loss, so the server catches up when its daemon is back. */
  connect?: () => Promise<Session>;
  /** The farm's group; ticket keys use `<group>.tk` (so at most 28 bytes). */
  group: string;
  /** How long a stored session may be resumed (default 300 s, OpenSSL's default). */
  sessionLifetimeSec?: number;
  /** Ticket-key rotation period (default 12 h). */
  rotateMs?: number;
  /** How long before its activation a new key is announced (default 5 s). */
  leadMs?: number;
  /**
   * The server's own TLS options (certificate, key, …): lets tickets sealed by the
   * previous key be accepted for `graceMs` after a rotation. Without them they are not.
   */
  tlsOptions?: tls.TlsOptions;
  /** How long the previous ticket key stays accepted (default: the session lifetime). */
  graceMs?: number;
  /** Memory for stored sessions (default 64 MiB). */
  limitBytes?: number;
  logger?: Logger;
}

export interface SharedTlsSessions {
  readonly sessions: SharedMap;
  readonly ticketKeys: TicketKeyRing;
  readonly ticketKeyGroup: ReplicatedGroup;
  /** Routes previous-key tickets during the grace period; null without `tlsOptions`. */
  readonly grace: TicketGrace | null;
  /** Announces a new key now (activating after `leadMs`), if this member generates keys. */
  rotateNow(): boolean;
  stop(): Promise<void>;
}

const CHECK_MS = 250;
const KEY_PREFIX = 'tls:';

export function shareTlsSessions(server: tls.Server, options: ShareTlsSessionsOptions): SharedTlsSessions {
  const logger = options.logger ?? silentLogger;
  const lifetimeMs = (options.sessionLifetimeSec ?? 300) * 1000;
  const rotateMs = options.rotateMs ?? 12 * 3600 * 1000;
  const leadMs = options.leadMs ?? 5000;
  const graceMs = options.graceMs ?? lifetimeMs;
  const grace = options.tlsOptions === undefined ? null : new TicketGrace(server, options.tlsOptions);
  const session = options.session;
  // The cache and the ticket keys share one session (and its reconnections).
  const connect = options.connect === undefined ? undefined : sharedConnector(options.connect);
  const sessions = new SharedMap({ group: options.group, session, connect, limitBytes: options.limitBytes ?? 64 * 1024 * 1024, logger });
  const ticketKeys = new TicketKeyRing();
  const ticketKeyGroup = new ReplicatedGroup({ group: `${options.group}.tk`, session, connect, replica: ticketKeys, logger });

  const onNewSession = (id: Buffer, data: Buffer, done: () => void) => {
    void sessions.store('set', KEY_PREFIX + id.toString('hex'), data, 0, Date.now() + lifetimeMs).then(() => done());
  };
  const onResumeSession = (id: Buffer, done: (error: Error | null, data: Buffer | null) => void) => {
    done(null, sessions.get(KEY_PREFIX + id.toString('hex'))?.value ?? null);
  };
  server.on('newSession', onNewSession);
  server.on('resumeSession', onResumeSession);

  let installed: Buffer | undefined;
  /** A key announcement is on its way through the group: do not send another before it is applied. */
  let announcing = false;
  let switchTimer: NodeJS.Timeout | null = null;
  const isGenerator = () => ticketKeyGroup.transfer.synced && ticketKeyGroup.me !== null && ticketKeyGroup.members[0] === ticketKeyGroup.me;
  const announce = (activateAtMs: number): boolean => {
    if (!isGenerator() || announcing) return false;
    announcing = ticketKeyGroup.propose(newTicketKey(activateAtMs));
    return announcing;
  };
  const tick = () => {
    const nowMs = Date.now();
    const current = ticketKeys.current(nowMs);
    if (current !== undefined && current.key !== installed) {
      if (installed !== undefined) grace?.acceptPrevious(installed, nowMs + graceMs);
      server.setTicketKeys(current.key);
      installed = current.key;
      logger.info({ group: options.group, activatedAtMs: current.activateAtMs }, 'ticket key switched');
    }
    const latest = ticketKeys.latestActivationMs();
    if (latest === undefined) announce(nowMs);
    // On schedule; after an outage of the generator, still `leadMs` ahead so the farm switches together.
    else if (latest <= nowMs && nowMs >= latest + rotateMs - leadMs) announce(Math.max(latest + rotateMs, nowMs + leadMs));
    // Switch on the announced millisecond rather than at the next check, so members differ by clock skew only.
    const next = ticketKeys.nextActivationMs(nowMs);
    if (next !== undefined && switchTimer === null) {
      switchTimer = setTimeout(() => {
        switchTimer = null;
        tick();
      }, next - nowMs);
      switchTimer.unref();
    }
  };
  const timer = setInterval(tick, Math.min(CHECK_MS, leadMs / 4));
  timer.unref();
  ticketKeyGroup.on('synced', tick);
  ticketKeyGroup.on('operation', () => {
    announcing = false;
    tick();
  });
  ticketKeyGroup.on('disconnected', () => (announcing = false));

  return {
    sessions,
    ticketKeys,
    ticketKeyGroup,
    grace,
    rotateNow: () => announce(Date.now() + leadMs),
    async stop() {
      clearInterval(timer);
      if (switchTimer !== null) clearTimeout(switchTimer);
      grace?.stop();
      server.off('newSession', onNewSession);
      server.off('resumeSession', onResumeSession);
      await Promise.all([sessions.stop(), ticketKeyGroup.stop()]);
    },
  };
}
