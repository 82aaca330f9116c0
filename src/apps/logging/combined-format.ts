/**
 * Apache's Common and Combined Log Formats:
 *   common   = %h %l %u %t "%r" %>s %b
 *   combined = common "%{Referer}i" "%{User-agent}i"
 * Values are escaped as Apache's ap_escape_logitem does: `"` and `\` get a
 * backslash, \b \n \r \t \v their C escapes, and any other byte outside
 * printable ASCII becomes \xhh.
 */
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const C_ESCAPES: Record<number, string> = { 8: '\\b', 10: '\\n', 13: '\\r', 9: '\\t', 11: '\\v', 0x22: '\\"', 0x5c: '\\\\' };

const two = (value: number) => String(value).padStart(2, '0');

/** `%t` without brackets: `10/Oct/2000:13:55:36 -0700`, in local time like Apache. */
export function clfTime(date: Date): string {
  const offsetMinutes = -date.getTimezoneOffset();
  const sign = offsetMinutes < 0 ? '-' : '+';
  const offset = Math.abs(offsetMinutes);
  return (
    `${two(date.getDate())}/${MONTHS[date.getMonth()]}/${date.getFullYear()}:` +
    `${two(date.getHours())}:${two(date.getMinutes())}:${two(date.getSeconds())} ` +
    `${sign}${two(Math.floor(offset / 60))}${two(offset % 60)}`
  );
}

/** The bracketed `[%t]` field of a Common Log Format line. */
export const CLF_TIME_FIELD = /\[\d{2}\/[A-Z][a-z]{2}\/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\]/;

/** Escapes a value (taken as its UTF-8 bytes) for a log line. */
export function escapeLogItem(value: string): string {
  if (/^[\x20-\x21\x23-\x5b\x5d-\x7e]*$/.test(value)) return value;
  let escaped = '';
  for (const byte of Buffer.from(value, 'utf8')) {
    const named = C_ESCAPES[byte];
    if (named !== undefined) escaped += named;
    else if (byte < 0x20 || byte > 0x7e) escaped += `\\x${byte.toString(16).padStart(2, '0')}`;
    else escaped += String.fromCharCode(byte);
  }
  return escaped;
}

/** What one request contributes to its log line. */
export interface RequestFacts {
  remoteHost: string;
  remoteUser: string | null;
  time: Date;
  method: string;
  url: string;
  httpVersion: string;
  status: number;
  bodyBytes: number;
  referer: string | undefined;
  userAgent: string | undefined;
}

export type LogFormat = 'common' | 'combined';

const orDash = (value: string | null | undefined) => (value === null || value === undefined || value === '' ? '-' : escapeLogItem(value));

export function formatLogLine(facts: RequestFacts, format: LogFormat): string {
  const requestLine = escapeLogItem(`${facts.method} ${facts.url} HTTP/${facts.httpVersion}`);
  const common =
    `${facts.remoteHost} - ${orDash(facts.remoteUser)} [${clfTime(facts.time)}] ` +
    `"${requestLine}" ${facts.status} ${facts.bodyBytes > 0 ? facts.bodyBytes : '-'}`;
  if (format === 'common') return common;
  return `${common} "${orDash(facts.referer)}" "${orDash(facts.userAgent)}"`;
}
