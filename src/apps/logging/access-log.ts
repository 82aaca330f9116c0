/**
 * accessLog(): a `node:http` request listener and Express-style middleware that
 * multicasts one Apache-format line per request to a log group.
 *
 *   const log = accessLog({ session, group: 'www', format: 'combined' });
 *   http.createServer((req, res) => { log(req, res); ... })   // or app.use(log)
 *
 * Lines of one event-loop turn go out as one message (newline-separated, see
 * wire.ts). The session is the caller's: when it has failed, lines are counted
 * in `dropped` and passed to `onDrop`, and requests are served as usual.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Service, Session } from '../../client/index.js';
import { formatLogLine, type LogFormat } from './combined-format.js';
import { BATCH_BYTES_MAX } from './wire.js';

export interface AccessLogOptions {
  session: Session;
  group: string;
  format?: LogFormat;
  /** Default 'agreed'. */
  service?: Service;
  /** Called with the lines that could not be sent and why. */
  onDrop?: (lines: string[], error: unknown) => void;
}

export interface AccessLogHandler {
  (req: IncomingMessage, res: ServerResponse, next?: (error?: unknown) => void): void;
  /** Lines that could not be sent. */
  readonly dropped: number;
  /** Sends the lines of this turn now. */
  flush(): void;
}

export function accessLog(options: AccessLogOptions): AccessLogHandler {
  const format = options.format ?? 'combined';
  let queued: string[] = [];
  let queuedBytes = 0;
  let scheduled = false;
  let dropped = 0;

  const flush = () => {
    scheduled = false;
    const lines = queued;
    queued = [];
    queuedBytes = 0;
    if (lines.length === 0) return;
    try {
      options.session.multicast(options.group, lines.join(''), { service: options.service ?? 'agreed' });
    } catch (error) {
      dropped += lines.length;
      options.onDrop?.(lines, error);
    }
  };

  const enqueue = (line: string) => {
    const bytes = Buffer.byteLength(line);
    if (queuedBytes + bytes > BATCH_BYTES_MAX) flush();
    queued.push(line);
    queuedBytes += bytes;
    if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  };

  const handler = (req: IncomingMessage, res: ServerResponse, next?: (error?: unknown) => void) => {
    const time = new Date();
    const countBody = bodyCounter(res);
    let logged = false;
    const log = () => {
      if (logged) return;
      logged = true;
      const bodyBytes = req.method === 'HEAD' ? 0 : countBody();
      enqueue(formatLogLine(requestFacts(req, res, time, bodyBytes), format) + '\n');
    };
    res.once('finish', log);
    res.once('close', log);
    next?.();
  };
  Object.defineProperty(handler, 'dropped', { get: () => dropped });
  return Object.assign(handler, { flush }) as AccessLogHandler;
}

function requestFacts(req: IncomingMessage, res: ServerResponse, time: Date, bodyBytes: number) {
  const address = req.socket.remoteAddress ?? '-';
  return {
    remoteHost: address.startsWith('::ffff:') ? address.slice(7) : address,
    remoteUser: basicAuthUser(req.headers.authorization),
    time,
    method: req.method ?? '-',
    url: (req as IncomingMessage & { originalUrl?: string }).originalUrl ?? req.url ?? '-',
    httpVersion: req.httpVersion,
    status: res.statusCode,
    bodyBytes,
    referer: req.headers.referer,
    userAgent: req.headers['user-agent'],
  };
}

function basicAuthUser(authorization: string | undefined): string | null {
  const match = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(authorization ?? '');
  if (match === null) return null;
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon > 0 ? decoded.slice(0, colon) : null;
}

/** Counts the body bytes written through res.write/res.end (what Apache's %b reports). */
function bodyCounter(res: ServerResponse): () => number {
  let bytes = 0;
  const count = (chunk: unknown, encoding: unknown) => {
    if (typeof chunk === 'string') bytes += Buffer.byteLength(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8');
    else if (chunk instanceof Uint8Array) bytes += chunk.length;
  };
  const write = res.write;
  const end = res.end;
  res.write = function (this: ServerResponse, chunk: unknown, ...rest: unknown[]) {
    count(chunk, rest[0]);
    return (write as (...args: unknown[]) => boolean).call(this, chunk, ...rest);
  } as typeof res.write;
  res.end = function (this: ServerResponse, chunk?: unknown, ...rest: unknown[]) {
    if (typeof chunk !== 'function') count(chunk, rest[0]);
    return (end as (...args: unknown[]) => ServerResponse).call(this, chunk, ...rest);
  } as typeof res.end;
  return () => bytes;
}
