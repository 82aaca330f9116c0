/**
 * The `spread_name` string of SP_connect (spread-protocol.md §1.1):
 * "" → "4803"; "<port>" → Unix socket <dir>/<port>; "<port>@<host>" → TCP.
 *
 * Deviations from the C library (which uses sscanf "%hu%s"): a port above 65535
 * is refused instead of wrapping, and an IPv6 literal may also be bracketed
 * ("4803@[::1]").
 */
import { DEFAULT_SPREAD_PORT, DEFAULT_UNIX_SOCKET_DIR, ErrorCode } from '../protocol/constants.js';
import { ConnectError } from './errors.js';

/** Where to connect: a Unix-domain socket path or a TCP host and port. */
export type DaemonAddress = { kind: 'unix'; path: string; port: number } | { kind: 'tcp'; host: string; port: number };

/** MAXHOSTNAMELEN on Linux; names of MAXHOSTNAMELEN+7 characters or more are refused (§1.1). */
const HOST_NAME_LENGTH_MAX = 64;
const SPREAD_NAME_LENGTH_MAX = HOST_NAME_LENGTH_MAX + 6;

/** Parses a Spread name; throws ConnectError ILLEGAL_SPREAD for anything SP_connect refuses. */
export function parseSpreadName(spreadName: string, unixSocketDir = DEFAULT_UNIX_SOCKET_DIR): DaemonAddress {
  const text = spreadName.trim() === '' ? String(DEFAULT_SPREAD_PORT) : spreadName.trim();
  const illegal = () => new ConnectError(ErrorCode.ILLEGAL_SPREAD, `illegal Spread name ${JSON.stringify(spreadName)}`);
  if (text.length > SPREAD_NAME_LENGTH_MAX) throw illegal();
  const match = /^(\d+)(?:\s*@(.*))?$/.exec(text);
  if (!match) throw illegal();
  const port = Number(match[1]);
  if (port > 0xffff) throw illegal();
  const hostPart = match[2];
  if (hostPart === undefined) return { kind: 'unix', path: `${unixSocketDir}/${port}`, port };
  let host = hostPart;
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  if (host === '' || /\s/.test(host)) throw illegal();
  return { kind: 'tcp', host, port };
}
