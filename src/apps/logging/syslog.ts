/**
 * Syslog datagrams (RFC 3164 and RFC 5424) to log lines: the collector writes the
 * message part, so nginx's `access_log syslog:server=…` lines arrive as nginx
 * formatted them. A line never contains '\n', so newlines inside a message become
 * spaces; trailing newlines and NULs are removed.
 */
import dgram from 'node:dgram';
import { LineSplitter, type LineRun } from './line-splitter.js';

export interface SyslogMessage {
  /** Tag (RFC 3164) or APP-NAME (RFC 5424); '' when absent. */
  tag: string;
  hostname: string;
  message: Buffer;
}

const PRI = /^<(\d{1,3})>/;
const BSD_TIMESTAMP = /^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d /;
const BSD_TAG = /^([^\s:[\]]+)(\[[^\]]*\])?: ?/;
const UTF8_BOM = Buffer.from([0xef, 0xbb, 0xbf]);

/** Parses one datagram; a datagram without a <PRI> is taken as a bare message. */
export function parseSyslog(datagram: Buffer): SyslogMessage {
  const head = datagram.subarray(0, 512).toString('latin1');
  const pri = PRI.exec(head);
  if (pri === null) return { tag: '', hostname: '', message: cleanMessage(datagram) };
  const afterPri = pri[0].length;
  return /^\d /.test(head.slice(afterPri)) ? parse5424(datagram, head, afterPri) : parse3164(datagram, head, afterPri);
}

function parse3164(datagram: Buffer, head: string, offset: number): SyslogMessage {
  const timestamp = BSD_TIMESTAMP.exec(head.slice(offset));
  if (timestamp !== null) offset += timestamp[0].length;
  let hostname = '';
  // A first word that is no `tag:` is the hostname (nginx's `nohostname` leaves it out).
  let tag = BSD_TAG.exec(head.slice(offset));
  if (tag === null) {
    const space = head.indexOf(' ', offset);
    if (space > offset) {
      hostname = head.slice(offset, space);
      offset = space + 1;
      tag = BSD_TAG.exec(head.slice(offset));
    }
  }
  if (tag === null) return { tag: '', hostname, message: cleanMessage(datagram.subarray(offset)) };
  return { tag: tag[1], hostname, message: cleanMessage(datagram.subarray(offset + tag[0].length)) };
}

function parse5424(datagram: Buffer, head: string, offset: number): SyslogMessage {
  // VERSION TIMESTAMP HOSTNAME APP-NAME PROCID MSGID, then STRUCTURED-DATA.
  const fields: string[] = [];
  for (let index = 0; index < 6; index++) {
    const space = head.indexOf(' ', offset);
    if (space < 0) return { tag: fields[3] ?? '', hostname: fields[2] ?? '', message: Buffer.alloc(0) };
    fields.push(head.slice(offset, space));
    offset = space + 1;
  }
  offset = skipStructuredData(head, offset);
  let message = datagram.subarray(offset);
  if (message.subarray(0, 3).equals(UTF8_BOM)) message = message.subarray(3);
  const nil = (value: string) => (value === '-' ? '' : value);
  return { tag: nil(fields[3]), hostname: nil(fields[2]), message: cleanMessage(message) };
}

/** The offset after STRUCTURED-DATA ('-' or [..][..], with \] escapes) and its space. */
function skipStructuredData(head: string, offset: number): number {
  if (head[offset] === '-') return offset + 2;
  while (head[offset] === '[') {
    offset++;
    while (offset < head.length && head[offset] !== ']') offset += head[offset] === '\\' ? 2 : 1;
    offset++;
  }
  return head[offset] === ' ' ? offset + 1 : offset;
}

function cleanMessage(message: Buffer): Buffer {
  let end = message.length;
  while (end > 0 && (message[end - 1] === 0x0a || message[end - 1] === 0x0d || message[end - 1] === 0)) end--;
  const line = Buffer.from(message.subarray(0, end));
  for (let at = line.indexOf(0x0a); at >= 0; at = line.indexOf(0x0a, at + 1)) line[at] = 0x20;
  return line;
}

/** A `udp://host:port` address. */
export function parseSyslogUrl(url: string): { host: string; port: number } {
  const match = /^udp:\/\/(\[[^\]]+\]|[^:/]+):(\d{1,5})\/?$/.exec(url);
  const port = match ? Number(match[2]) : 0;
  if (match === null || port < 1 || port > 65535) throw new Error(`expected udp://host:port, got ${JSON.stringify(url)}`);
  return { host: match[1].replace(/^\[|\]$/g, ''), port };
}

/** Listens for syslog datagrams and hands each message on as one line. */
export async function listenSyslog(url: string, onLines: (run: LineRun) => void, splitter = new LineSplitter()): Promise<dgram.Socket> {
  const { host, port } = parseSyslogUrl(url);
  const socket = dgram.createSocket({ type: host.includes(':') ? 'udp6' : 'udp4', recvBufferSize: 8 * 1024 * 1024 });
  socket.on('message', (datagram) => {
    const { message } = parseSyslog(datagram);
    onLines(splitter.push(Buffer.concat([message, Buffer.from('\n')])));
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(port, host, () => {
      socket.off('error', reject);
      resolve();
    });
  });
  return socket;
}
