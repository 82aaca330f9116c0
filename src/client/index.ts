/**
 * tspread client library: `import { connect } from 'tspread'`.
 * A Spread 5.0.1 wire-compatible client (spread-protocol.md §1–§7).
 */
/** Connects to a daemon and returns an open Session. */
export { connect, Session } from './session.js';
/** Options and event types of connect() and Session. */
export type { ConnectOptions, MulticastOptions, SessionEvents } from './session.js';
/** Received messages: a union discriminated by `kind`. */
export type {
  DataMessage,
  Delivery,
  MembershipCause,
  MembershipMessage,
  Message,
  RejectMessage,
  Service,
} from './messages.js';
/** Parses a Spread name ("4803", "4803@host") into a socket address. */
export { parseSpreadName } from './address.js';
export type { DaemonAddress } from './address.js';
/** Error classes, each carrying Spread's numeric `code` and `codeName`. */
export {
  ConnectError,
  ConnectionClosedError,
  IllegalMessageError,
  InvalidRequestError,
  RejectedError,
  SpreadError,
} from './errors.js';
/** Spread's numeric error codes (sp.h). */
export { ErrorCode } from '../protocol/constants.js';
/** A view's group id and its comparison (SP_equal_group_ids). */
export type { GroupId } from '../protocol/membership.js';
export { groupIdsEqual } from '../protocol/membership.js';
