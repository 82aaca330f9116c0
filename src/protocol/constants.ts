/**
 * Constants of Spread 5.0.1's client protocol (../shared/spread-protocol.md §4, §6).
 * Values are facts of the wire format; names follow Spread's sp.h where one exists.
 */

/** `type` bits (§4.1). */
export const ServiceType = {
  UNRELIABLE_MESS: 0x00000001,
  RELIABLE_MESS: 0x00000002,
  FIFO_MESS: 0x00000004,
  CAUSAL_MESS: 0x00000008,
  AGREED_MESS: 0x00000010,
  SAFE_MESS: 0x00000020,
  REGULAR_MESS: 0x0000003f,
  SELF_DISCARD: 0x00000040,
  CAUSED_BY_JOIN: 0x00000100,
  CAUSED_BY_LEAVE: 0x00000200,
  CAUSED_BY_DISCONNECT: 0x00000400,
  CAUSED_BY_NETWORK: 0x00000800,
  REG_MEMB_MESS: 0x00001000,
  TRANSITION_MESS: 0x00002000,
  MEMBERSHIP_MESS: 0x00003f00,
  JOIN_MESS: 0x00010000,
  LEAVE_MESS: 0x00020000,
  KILL_MESS: 0x00040000,
  GROUPS_MESS: 0x00080000,
  REJECT_MESS: 0x00400000,
  DROP_RECV: 0x01000000,
} as const;

/** OR-ed into `type` and `hint` by a little-endian writer (§3.2). Reads the same in both byte orders. */
export const ENDIAN_MARKER = 0x80000080;

/** Bits a client may set in a request `type` after clearing the marker (§3.3, §12: stricter than Spread). */
export const CLIENT_TYPE_ALLOWED_MASK = 0x3f | 0x40 | 0x70000;

/** Handshake and API result codes (§2.7, §4.3). */
export const ErrorCode = {
  ACCEPT_SESSION: 1,
  ILLEGAL_SPREAD: -1,
  COULD_NOT_CONNECT: -2,
  REJECT_QUOTA: -3,
  REJECT_NO_NAME: -4,
  REJECT_ILLEGAL_NAME: -5,
  REJECT_NOT_UNIQUE: -6,
  REJECT_VERSION: -7,
  CONNECTION_CLOSED: -8,
  REJECT_AUTH: -9,
  ILLEGAL_SESSION: -11,
  ILLEGAL_SERVICE: -12,
  ILLEGAL_MESSAGE: -13,
  ILLEGAL_GROUP: -14,
  BUFFER_TOO_SHORT: -15,
  GROUPS_TOO_SHORT: -16,
  MESSAGE_TOO_LONG: -17,
  NET_ERROR_ON_SESSION: -18,
  SP_BUG: -19,
  ILLEGAL_TIME: -20,
} as const;
export type ErrorCodeName = keyof typeof ErrorCode;

/** Version this implementation announces in handshakes (§2.2, §2.6). */
export const SPREAD_VERSION = { major: 5, minor: 0, patch: 1 } as const;

export const DEFAULT_SPREAD_PORT = 4803;
export const DEFAULT_UNIX_SOCKET_DIR = '/tmp';

/** Limits (§4.2, §6.1). Units last in the name. */
export const HEADER_BYTES = 48;
export const GROUP_NAME_BYTES = 32; // includes the NUL
export const PRIVATE_NAME_LENGTH_MAX = 10;
export const DAEMON_NAME_LENGTH_MAX = 19;
export const GROUPS_PER_MESSAGE_MAX = 100;
/** Largest 32·num_groups + data_len a Spread daemon can really carry (§6.2). */
export const MESSAGE_BYTES_MAX = 143_152;
/** The C library's own check (§4.3 MESSAGE_TOO_LONG). */
export const LIBRARY_MESSAGE_BYTES_MAX = 144_000;
export const SESSIONS_PER_DAEMON_MAX = 997;
export const AUTH_METHODS_MAX = 3;
export const AUTH_NAME_BYTES = 30;
export const AUTH_CHOICE_BYTES = AUTH_METHODS_MAX * AUTH_NAME_BYTES; // 90
export const AUTH_LIST_LENGTH_MAX = 90;
/** tspread's PWORD exchange after the auth choice: user name and password, 32 bytes each, NUL-padded. */
export const PWORD_FIELD_BYTES = 32;
/** Default `MaxSessionMessages` (§6.3). */
export const SESSION_MESSAGES_MAX_DEFAULT = 1000;
/** Local members of one group at one daemon before a join is rejected (§3.6). */
export const GROUP_LOCAL_MEMBERS_MAX = 3122;

/** Printable name bytes allowed in private names, daemon names and group names: `$`…`~` (§2.3). */
export const NAME_BYTE_MIN = 0x24;
export const NAME_BYTE_MAX = 0x7e;

export function isRegularMess(type: number): boolean {
  return (type & ServiceType.REGULAR_MESS) !== 0 && (type & ServiceType.REJECT_MESS) === 0;
}
export function isMembershipMess(type: number): boolean {
  return (type & ServiceType.MEMBERSHIP_MESS) !== 0 && (type & ServiceType.REJECT_MESS) === 0;
}
export function isSelfLeave(type: number): boolean {
  return (
    (type & ServiceType.CAUSED_BY_LEAVE) !== 0 &&
    (type & (ServiceType.REG_MEMB_MESS | ServiceType.TRANSITION_MESS)) === 0
  );
}
export function isRejectMess(type: number): boolean {
  return (type & ServiceType.REJECT_MESS) !== 0;
}
