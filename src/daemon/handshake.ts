/**
 * The daemon side of the connection handshake (§2.3–§2.9) as a pure state machine:
 * bytes in, bytes out plus an outcome. No socket, no clock, no Math.random().
 *
 * Exactly as Spread 5.0.1: version branches (3.14 sends no patch byte; < 3.16 gets no
 * auth list), signed-char reads of the version and flags bytes (flags 0x81 turns
 * membership delivery off), reject bytes and silent closes, `r<rnd>-<n>` names for an
 * empty private name, AllowedAuthMethods / RequiredAuthMethods and the IP method.
 *
 * Deliberate deviations (Spread's behaviour is a bug there, §2.2, §2.3):
 *   - Input is buffered incrementally: a name split across TCP segments, or an auth
 *     choice pipelined right after the name, is accepted. Spread reads the name with one
 *     recv and rejects both.
 *   - Handshakes never serialize: the caller runs one machine per connection and calls
 *     `expire()` at its own deadline. Then, like Spread after its 1 s wait: nothing of the
 *     name yet → silent close; part of the name → REJECT_ILLEGAL_NAME; part (or none) of
 *     the auth choice → REJECT_AUTH.
 *   - `unix` in spread.access_ip admits Unix-domain sessions (see access-ip.ts).
 *
 * tspread's methods beyond Spread's (docs/security.md):
 *   - PWORD: right after the auth choice the client sends a 32-byte user name and a
 *     32-byte password, each NUL-padded; checked against the password file. A PWORD that
 *     is required but was not requested is refused at once (the client sends nothing).
 *   - CERT: passes when the session came over TLS with a verified client certificate.
 * After the methods, the access-control file's `connect` rules run (Spread's
 * open_connection check); a refusal is REJECT_AUTH.
 */
import {
  AUTH_CHOICE_BYTES,
  DAEMON_NAME_LENGTH_MAX,
  ErrorCode,
  PRIVATE_NAME_LENGTH_MAX,
  PWORD_FIELD_BYTES,
  SPREAD_VERSION,
} from '../protocol/constants.js';
import { encodeAccept, encodeAuthList, parseAuthChoice, signedByte as signed } from '../protocol/handshake.js';
import { formatPrivateGroup, isLegalNameByte } from '../protocol/names.js';
import { accessIpAllows, peerIpv4, type AccessIpRules, type PeerAddress } from './access-ip.js';
import { decideAccess, type AccessControl, type SessionPrincipal } from '../security/access-control.js';
import { checkPassword, type PasswordTable } from '../security/passwords.js';

/** Daemon settings the handshake needs. */
export interface HandshakePolicy {
  daemonName: string;
  /** Enabled methods in Spread's registration order (NULL, IP, PWORD); advertised in §2.4. */
  allowedAuthMethods: readonly string[];
  /** Methods always run after a non-empty request (§2.5); need not be enabled. */
  requiredAuthMethods: readonly string[];
  /** spread.access_ip rules; null = no file loaded (IP denies everyone). */
  accessIp: AccessIpRules | null;
  /** PWORD users; null = no password file (PWORD denies everyone). Read at each check: a reload applies to the next handshake. */
  passwords?: PasswordTable | null;
  /** Access-control rules (connect); null = everyone may connect. */
  accessControl?: AccessControl | null;
  /**
   * Whether one more PWORD check may run now (the daemon's rate limit: each costs a few ms
   * of scrypt on the event loop the ring shares). False refuses with REJECT_AUTH. Default: always.
   */
  passwordCheckAllowed?: () => boolean;
}

export interface HandshakeEnvironment {
  /** True when another session of this daemon (any state) holds the private name. */
  isNameTaken(name: string): boolean;
  /** Uniform in [0, 1): the injected PRNG for generated names. */
  random(): number;
}

export interface AcceptedSession {
  privateName: string;
  privateGroup: string;
  /** Deliver membership messages (flags % 2 == 1 on the signed byte). */
  membership: boolean;
  /** flags / 16 on the signed byte; stored, never used (as in Spread). */
  priority: number;
  /** major*10000 + minor*100 + patch. */
  libraryVersion: number;
  /** Who the session proved to be (for access control). */
  principal: SessionPrincipal;
}

export type HandshakeOutcome =
  | { kind: 'pending' }
  | { kind: 'accepted'; session: AcceptedSession; leftover: Uint8Array }
  /** A reject byte is the last thing in `output`; close after writing it. */
  | { kind: 'rejected'; code: number; reason: string }
  /** Close without writing anything more. */
  | { kind: 'closed'; reason: string };

export interface HandshakeStep {
  output: Uint8Array[];
  outcome: HandshakeOutcome;
}

type Phase = 'version' | 'flags' | 'name' | 'auth' | 'password' | 'done';

/** Bytes a client may send before the handshake ends; more is hostile (a message or two). */
export const HANDSHAKE_BUFFER_BYTES_MAX = 256 * 1024;
/** Default per-connection deadline (ms) the adapters apply; Spread waits 1 s per read. */
export const HANDSHAKE_DEADLINE_MS_DEFAULT = 5000;
/** Generated names: `r` + 0..9998 + `-` + connection number, cut to 9 characters (§2.3). */
const GENERATED_NAME_LENGTH_MAX = 9;
const GENERATED_NAME_ATTEMPTS_MAX = 10_000;

const VERSION_MINIMUM = 30100;
const VERSION_WITH_PATCH_ABOVE = 31400;
const VERSION_WITH_AUTH_LIST = 31600;

/** Integer division as C does it (truncation toward zero). */
function cDivide(a: number, b: number): number {
  return Math.trunc(a / b);
}

export class DaemonHandshake {
  private readonly policy: HandshakePolicy;
  private readonly environment: HandshakeEnvironment;
  /** Stands in for Spread's socket descriptor in generated names. */
  private readonly connectionNumber: number;
  private readonly peer: PeerAddress;
  private phase: Phase = 'version';
  private buffer: Buffer = Buffer.alloc(0);
  private versionNumber = 0;
  private sendsPatch = false;
  private membership = false;
  private priority = 0;
  private nameLength = 0;
  /** Methods still to run once the PWORD credentials have arrived. */
  private methodsToRun: string[] = [];
  private user: string | null = null;
  /** Claimed private name, once it passed the checks (the session is then registered, §2.3 step 6). */
  name: string | null = null;

  constructor(policy: HandshakePolicy, environment: HandshakeEnvironment, connectionNumber: number, peer: PeerAddress) {
    this.policy = policy;
    this.environment = environment;
    this.connectionNumber = connectionNumber;
    this.peer = peer;
  }

  get finished(): boolean {
    return this.phase === 'done';
  }

  /** Feed bytes as they arrive, split anywhere. */
  push(bytes: Uint8Array): HandshakeStep {
    if (this.phase === 'done') throw new Error('handshake: push after the outcome');
    this.buffer = this.buffer.length === 0 ? Buffer.from(bytes) : Buffer.concat([this.buffer, bytes]);
    if (this.buffer.length > HANDSHAKE_BUFFER_BYTES_MAX) return this.close('too many bytes before the handshake ended');
    const output: Uint8Array[] = [];
    for (;;) {
      const outcome = this.advance(output);
      if (outcome !== null) return { output, outcome };
    }
  }

  /** The caller's deadline passed (see the module comment). */
  expire(): HandshakeStep {
    if (this.phase === 'done') throw new Error('handshake: expire after the outcome');
    if (this.phase === 'name' && this.buffer.length > 0) {
      return this.reject([], ErrorCode.REJECT_ILLEGAL_NAME, 'deadline passed with part of the name');
    }
    if (this.phase === 'auth') return this.reject([], ErrorCode.REJECT_AUTH, 'deadline passed before the auth choice');
    if (this.phase === 'password') return this.reject([], ErrorCode.REJECT_AUTH, 'deadline passed before the PWORD credentials');
    return this.close('deadline passed before the connect request was complete');
  }

  /** One step of the machine: an outcome when the handshake ended or needs more bytes, else null to continue. */
  private advance(output: Uint8Array[]): HandshakeOutcome | null {
    switch (this.phase) {
      case 'version':
        return this.readVersion(output);
      case 'flags':
        return this.readFlags(output);
      case 'name':
        return this.readName(output);
      case 'auth':
        return this.readAuthChoice(output);
      case 'password':
        return this.readPassword(output);
      case 'done':
        throw new Error('handshake: advance after the outcome');
    }
  }

  private readVersion(output: Uint8Array[]): HandshakeOutcome | null {
    if (this.buffer.length < 2) return { kind: 'pending' };
    const major = signed(this.buffer[0]);
    const minor = signed(this.buffer[1]);
    this.sendsPatch = major * 10000 + minor * 100 > VERSION_WITH_PATCH_ABOVE;
    const needed = this.sendsPatch ? 3 : 2;
    if (this.buffer.length < needed) return { kind: 'pending' };
    const patch = this.sendsPatch ? signed(this.buffer[2]) : 0;
    this.versionNumber = major * 10000 + minor * 100 + patch;
    this.consume(needed);
    if (this.versionNumber < VERSION_MINIMUM) {
      return this.reject(output, ErrorCode.REJECT_VERSION, `library version ${this.versionNumber} below 3.1.0`).outcome;
    }
    this.phase = 'flags';
    return null;
  }

  private readFlags(output: Uint8Array[]): HandshakeOutcome | null {
    if (this.buffer.length < 2) return { kind: 'pending' };
    const flags = signed(this.buffer[0]);
    const length = signed(this.buffer[1]);
    this.consume(2);
    this.membership = flags % 2 === 1;
    this.priority = cDivide(flags, 16);
    if (length < 0 || length > PRIVATE_NAME_LENGTH_MAX) {
      return this.reject(output, ErrorCode.REJECT_ILLEGAL_NAME, `private name length ${length}`).outcome;
    }
    this.nameLength = length;
    this.phase = 'name';
    return null;
  }

  private readName(output: Uint8Array[]): HandshakeOutcome | null {
    let name: string;
    if (this.nameLength === 0) {
      const generated = this.generateName();
      if (generated === null) return this.reject(output, ErrorCode.REJECT_ILLEGAL_NAME, 'no free generated name').outcome;
      name = generated;
    } else {
      if (this.buffer.length < this.nameLength) return { kind: 'pending' };
      for (let i = 0; i < this.nameLength; i++) {
        if (!isLegalNameByte(this.buffer[i])) {
          return this.reject(output, ErrorCode.REJECT_ILLEGAL_NAME, 'illegal byte in the private name').outcome;
        }
      }
      name = this.buffer.toString('latin1', 0, this.nameLength);
      this.consume(this.nameLength);
      if (this.environment.isNameTaken(name)) {
        return this.reject(output, ErrorCode.REJECT_NOT_UNIQUE, `private name '${name}' in use`).outcome;
      }
    }
    this.name = name;
    if (this.versionNumber < VERSION_WITH_AUTH_LIST) return this.legacyAuthentication(output);
    const allowed = this.policy.allowedAuthMethods;
    output.push(encodeAuthList(allowed));
    if (allowed.length === 0) {
      return this.reject(output, ErrorCode.REJECT_AUTH, 'no authentication method is enabled').outcome;
    }
    this.phase = 'auth';
    return null;
  }

  /** Libraries < 3.16 get no auth exchange (§2.9). */
  private legacyAuthentication(output: Uint8Array[]): HandshakeOutcome {
    const allowed = this.policy.allowedAuthMethods;
    if (allowed.includes('IP')) {
      if (accessIpAllows(this.policy.accessIp, this.peer)) return this.runMethods(output, []);
      return this.reject(output, ErrorCode.REJECT_AUTH, 'IP method denied the peer').outcome;
    }
    if (allowed.includes('NULL')) return this.runMethods(output, []);
    return this.reject(output, ErrorCode.REJECT_AUTH, 'neither IP nor NULL is enabled for an old library').outcome;
  }

  private readAuthChoice(output: Uint8Array[]): HandshakeOutcome {
    if (this.buffer.length < AUTH_CHOICE_BYTES) return { kind: 'pending' };
    const requested = parseAuthChoice(this.buffer.subarray(0, AUTH_CHOICE_BYTES));
    this.consume(AUTH_CHOICE_BYTES);
    if (requested.length === 0) return this.reject(output, ErrorCode.REJECT_AUTH, 'no auth method requested').outcome;
    const allowed = this.policy.allowedAuthMethods;
    const unknown = requested.find((method) => !allowed.includes(method));
    if (unknown !== undefined) {
      return this.reject(output, ErrorCode.REJECT_AUTH, `auth method '${unknown}' not enabled`).outcome;
    }
    const toRun = [...requested];
    for (const method of this.policy.requiredAuthMethods) if (!toRun.includes(method)) toRun.push(method);
    if (this.peer.kind === 'tcp' && this.peer.tls?.certificateRequired === true && !toRun.includes('CERT')) toRun.push('CERT');
    if (toRun.includes('PWORD')) {
      // Only a client that asked for PWORD sends credentials: a required one it skipped fails now.
      if (!requested.includes('PWORD')) return this.reject(output, ErrorCode.REJECT_AUTH, "auth method 'PWORD' required but not requested").outcome;
      this.methodsToRun = toRun;
      this.phase = 'password';
      return this.readPassword(output);
    }
    return this.runMethods(output, toRun);
  }

  /** PWORD's exchange: 32 bytes of user name, 32 of password, both NUL-padded. */
  private readPassword(output: Uint8Array[]): HandshakeOutcome {
    if (this.buffer.length < 2 * PWORD_FIELD_BYTES) return { kind: 'pending' };
    const field = (at: number) => {
      const bytes = this.buffer.subarray(at, at + PWORD_FIELD_BYTES);
      const end = bytes.indexOf(0);
      return bytes.toString('utf8', 0, end < 0 ? PWORD_FIELD_BYTES : end);
    };
    const user = field(0);
    const password = field(PWORD_FIELD_BYTES);
    this.consume(2 * PWORD_FIELD_BYTES);
    const table = this.policy.passwords ?? null;
    if (this.policy.passwordCheckAllowed?.() === false) {
      return this.reject(output, ErrorCode.REJECT_AUTH, 'too many PWORD attempts: try again later').outcome;
    }
    if (table === null || user === '' || !checkPassword(table, user, password)) {
      return this.reject(output, ErrorCode.REJECT_AUTH, `auth method 'PWORD' failed for user '${user}'`).outcome;
    }
    this.user = user;
    return this.runMethods(output, this.methodsToRun.filter((method) => method !== 'PWORD'));
  }

  private runMethods(output: Uint8Array[], methods: readonly string[]): HandshakeOutcome {
    for (const method of methods) {
      if (!this.runMethod(method)) return this.reject(output, ErrorCode.REJECT_AUTH, `auth method '${method}' failed`).outcome;
    }
    const control = this.policy.accessControl ?? null;
    if (control !== null) {
      const decision = decideAccess(control, this.principal(), 'connect');
      if (!decision.allowed) return this.reject(output, ErrorCode.REJECT_AUTH, `access control denies connect (${decision.by})`).outcome;
    }
    return this.accept(output);
  }

  private runMethod(method: string): boolean {
    if (method === 'NULL') return true;
    if (method === 'IP') return accessIpAllows(this.policy.accessIp, this.peer);
    if (method === 'CERT') return this.peer.kind === 'tcp' && (this.peer.tls?.certificate ?? null) !== null;
    return false; // Anything else is not implemented, so never passes.
  }

  private principal(): SessionPrincipal {
    const peer = this.peer;
    return {
      privateName: this.name ?? '',
      user: this.user,
      certificate: peer.kind === 'tcp' ? (peer.tls?.certificate ?? null) : null,
      tls: peer.kind === 'tcp' && peer.tls !== undefined,
      ipv4: peerIpv4(peer),
      unix: peer.kind === 'unix',
    };
  }

  private accept(output: Uint8Array[]): HandshakeOutcome {
    const privateName = this.name as string;
    const privateGroup = formatPrivateGroup(privateName, this.policy.daemonName.slice(0, DAEMON_NAME_LENGTH_MAX));
    output.push(encodeAccept({ daemonVersion: SPREAD_VERSION, privateGroup }, this.sendsPatch));
    const leftover = this.buffer;
    this.buffer = Buffer.alloc(0);
    this.phase = 'done';
    return {
      kind: 'accepted',
      session: {
        privateName,
        privateGroup,
        membership: this.membership,
        priority: this.priority,
        libraryVersion: this.versionNumber,
        principal: this.principal(),
      },
      leftover,
    };
  }

  private generateName(): string | null {
    for (let attempt = 0; attempt < GENERATED_NAME_ATTEMPTS_MAX; attempt++) {
      const rnd = Math.floor(this.environment.random() * 9999);
      const name = `r${rnd}-${this.connectionNumber}`.slice(0, GENERATED_NAME_LENGTH_MAX);
      if (!this.environment.isNameTaken(name)) return name;
    }
    return null;
  }

  private consume(count: number): void {
    this.buffer = this.buffer.subarray(count);
  }

  private reject(output: Uint8Array[], code: number, reason: string): HandshakeStep {
    output.push(Uint8Array.of(code & 0xff));
    this.phase = 'done';
    return { output, outcome: { kind: 'rejected', code, reason } };
  }

  private close(reason: string): HandshakeStep {
    this.phase = 'done';
    return { output: [], outcome: { kind: 'closed', reason } };
  }
}
