/**
 * The client side of the connection handshake (spread-protocol.md §2), run on a
 * connected socket before the session takes it over.
 */
import type { Socket } from 'node:net';
import { AUTH_LIST_LENGTH_MAX, ErrorCode, GROUP_NAME_BYTES, PWORD_FIELD_BYTES, SPREAD_VERSION } from '../protocol/constants.js';
import { encodeAuthChoice, encodeConnectRequest, parseAuthList, signedByte as signed, type LibraryVersion } from '../protocol/handshake.js';
import { spreadError } from './errors.js';

/** What the handshake asks for. */
export interface HandshakeRequest {
  privateName: string;
  membership: boolean;
  priority: number;
  authMethods: readonly string[];
  /** Credentials for the PWORD method (sent right after the auth choice when it is requested). */
  password?: { user: string; password: string };
}

/** PWORD credentials on the wire: 32 bytes of user name, 32 of password, NUL-padded (docs/security.md). */
function encodePassword(user: string, password: string): Buffer {
  const out = Buffer.alloc(2 * PWORD_FIELD_BYTES);
  const userBytes = Buffer.from(user, 'utf8');
  const passwordBytes = Buffer.from(password, 'utf8');
  if (userBytes.length >= PWORD_FIELD_BYTES || passwordBytes.length >= PWORD_FIELD_BYTES) {
    throw spreadError(ErrorCode.REJECT_AUTH, `PWORD user name and password must each be under ${PWORD_FIELD_BYTES} bytes`);
  }
  userBytes.copy(out, 0);
  passwordBytes.copy(out, PWORD_FIELD_BYTES);
  return out;
}

/** What the daemon granted. */
export interface HandshakeResult {
  privateGroup: string;
  daemonVersion: LibraryVersion;
  /** Bytes that arrived after the accept (the start of the message stream). */
  leftover: Buffer;
}

/** Reads exact byte counts from a socket that is in flowing mode. */
class ByteReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private waiter: (() => void) | null = null;
  private failure: Error | null = null;
  private readonly onData = (chunk: Buffer) => {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    this.wake();
  };
  private readonly onEnd = () => this.fail(spreadError(ErrorCode.CONNECTION_CLOSED, 'daemon closed the connection during the handshake'));
  private readonly onError = (error: Error) =>
    this.fail(spreadError(ErrorCode.CONNECTION_CLOSED, `connection failed during the handshake: ${error.message}`, error));

  constructor(private readonly socket: Socket) {
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('close', this.onEnd);
    socket.on('error', this.onError);
  }

  fail(error: Error): void {
    this.failure ??= error;
    this.wake();
  }

  async read(count: number): Promise<Buffer> {
    while (this.buffered < count) {
      if (this.failure) throw this.failure;
      await new Promise<void>((resolve) => (this.waiter = resolve));
    }
    const all = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks);
    const out = all.subarray(0, count);
    const rest = all.subarray(count);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.buffered = rest.length;
    return out;
  }

  /** Stops listening and returns what is still buffered. */
  detach(): Buffer {
    this.socket.off('data', this.onData);
    this.socket.off('end', this.onEnd);
    this.socket.off('close', this.onEnd);
    this.socket.off('error', this.onError);
    return this.chunks.length === 0 ? Buffer.alloc(0) : Buffer.concat(this.chunks);
  }

  private wake(): void {
    const waiter = this.waiter;
    this.waiter = null;
    waiter?.();
  }
}

/**
 * Runs the handshake. `abort` lets the caller fail it from outside (timeout).
 * Throws SpreadError (RejectedError, ConnectionClosedError).
 */
export async function runHandshake(
  socket: Socket,
  request: HandshakeRequest,
  abort: (fail: (error: Error) => void) => void,
): Promise<HandshakeResult> {
  const reader = new ByteReader(socket);
  abort((error) => reader.fail(error));
  try {
    // §2.2: exactly 5+L bytes in one write, then wait (the daemon reads the name with one recv).
    socket.write(
      encodeConnectRequest({
        version: SPREAD_VERSION,
        membership: request.membership,
        priority: request.priority,
        privateName: request.privateName,
      }),
    );
    const listLength = signed((await reader.read(1))[0]);
    if (listLength < 0) throw spreadError(listLength, `daemon refused the session`);
    if (listLength > AUTH_LIST_LENGTH_MAX) throw spreadError(ErrorCode.CONNECTION_CLOSED, 'auth list too long');
    const offered = parseAuthList((await reader.read(listLength)).toString('latin1'));
    // §2.5: the C library refuses locally unless every method it would use is offered.
    const missing = request.authMethods.find((method) => !offered.includes(method));
    if (missing !== undefined) {
      throw spreadError(ErrorCode.REJECT_AUTH, `daemon does not offer auth method ${missing} (offers: ${offered.join(' ') || 'none'})`);
    }
    if (request.authMethods.includes('PWORD')) {
      if (request.password === undefined) throw spreadError(ErrorCode.REJECT_AUTH, 'PWORD requested without a user name and password');
      socket.write(Buffer.concat([encodeAuthChoice(request.authMethods), encodePassword(request.password.user, request.password.password)]));
    } else {
      socket.write(encodeAuthChoice(request.authMethods));
    }
    // §2.6: one result byte (a lone negative byte is a reject), then versions, then the name.
    const result = signed((await reader.read(1))[0]);
    if (result !== ErrorCode.ACCEPT_SESSION) {
      throw spreadError(result < 0 ? result : ErrorCode.CONNECTION_CLOSED, `daemon refused the session`);
    }
    const head = await reader.read(4);
    const daemonVersion = { major: signed(head[0]), minor: signed(head[1]), patch: signed(head[2]) };
    const nameLength = signed(head[3]);
    if (daemonVersion.major < 0 || daemonVersion.minor < 0 || daemonVersion.patch < 0 || nameLength < 0 || nameLength >= GROUP_NAME_BYTES) {
      throw spreadError(ErrorCode.CONNECTION_CLOSED, 'malformed accept message');
    }
    if (daemonVersion.major < 3) throw spreadError(ErrorCode.REJECT_VERSION, `daemon version ${daemonVersion.major} too old`);
    if (request.priority > 0 && daemonVersion.major === 3 && daemonVersion.minor < 8) {
      throw spreadError(ErrorCode.REJECT_VERSION, 'daemon too old for priority');
    }
    const privateGroup = (await reader.read(nameLength)).toString('latin1');
    return { privateGroup, daemonVersion, leftover: reader.detach() };
  } catch (error) {
    reader.detach();
    throw error;
  }
}
