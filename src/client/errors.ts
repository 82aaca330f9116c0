/**
 * Typed errors of the client library. Every error carries Spread's numeric code
 * (ErrorCode, spread-protocol.md §2.7, §4.3) and its name, so code written against
 * the C API's return values maps one to one.
 */
import { ErrorCode, type ErrorCodeName } from '../protocol/constants.js';

const codeNames = new Map<number, ErrorCodeName>(
  (Object.entries(ErrorCode) as [ErrorCodeName, number][]).map(([name, code]) => [code, name]),
);

/** Base class: a Spread error with its numeric `code` and `codeName` (e.g. -8, 'CONNECTION_CLOSED'). */
export class SpreadError extends Error {
  override name = 'SpreadError';
  /** Spread's numeric error code (negative), as the C library returns it. */
  readonly code: number;
  /** The code's name in sp.h, e.g. 'REJECT_NOT_UNIQUE'. */
  readonly codeName: ErrorCodeName | 'UNKNOWN';

  constructor(code: number, message?: string, options?: { cause?: unknown }) {
    const codeName = codeNames.get(code) ?? 'UNKNOWN';
    super(message ?? codeName, options);
    this.code = code;
    this.codeName = codeName;
  }
}

/** Connecting failed: bad name (ILLEGAL_SPREAD), unreachable daemon (COULD_NOT_CONNECT) or ILLEGAL_TIME. */
export class ConnectError extends SpreadError {
  override name = 'ConnectError';
}

/** The daemon (or the library on its behalf) refused the session: REJECT_QUOTA, _ILLEGAL_NAME, _NOT_UNIQUE, _VERSION, _AUTH, _NO_NAME. */
export class RejectedError extends SpreadError {
  override name = 'RejectedError';
}

/** The connection broke or the session is no longer usable: CONNECTION_CLOSED, NET_ERROR_ON_SESSION, ILLEGAL_SESSION. */
export class ConnectionClosedError extends SpreadError {
  override name = 'ConnectionClosedError';
}

/** A call was refused before anything was sent: ILLEGAL_GROUP, ILLEGAL_SERVICE, MESSAGE_TOO_LONG. */
export class InvalidRequestError extends SpreadError {
  override name = 'InvalidRequestError';
}

/** The daemon sent bytes that cannot be a Spread message (ILLEGAL_MESSAGE); the session is closed. */
export class IllegalMessageError extends SpreadError {
  override name = 'IllegalMessageError';
}

/** Creates the subclass matching `code`. */
export function spreadError(code: number, message?: string, cause?: unknown): SpreadError {
  const options = cause === undefined ? undefined : { cause };
  switch (code) {
    case ErrorCode.ILLEGAL_SPREAD:
    case ErrorCode.COULD_NOT_CONNECT:
    case ErrorCode.ILLEGAL_TIME:
      return new ConnectError(code, message, options);
    case ErrorCode.REJECT_QUOTA:
    case ErrorCode.REJECT_NO_NAME:
    case ErrorCode.REJECT_ILLEGAL_NAME:
    case ErrorCode.REJECT_NOT_UNIQUE:
    case ErrorCode.REJECT_VERSION:
    case ErrorCode.REJECT_AUTH:
      return new RejectedError(code, message, options);
    case ErrorCode.CONNECTION_CLOSED:
    case ErrorCode.NET_ERROR_ON_SESSION:
    case ErrorCode.ILLEGAL_SESSION:
      return new ConnectionClosedError(code, message, options);
    case ErrorCode.ILLEGAL_GROUP:
    case ErrorCode.ILLEGAL_SERVICE:
    case ErrorCode.MESSAGE_TOO_LONG:
      return new InvalidRequestError(code, message, options);
    case ErrorCode.ILLEGAL_MESSAGE:
      return new IllegalMessageError(code, message, options);
    default:
      return new SpreadError(code, message, options);
  }
}
