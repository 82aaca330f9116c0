// The logging app's pure parts: line splitting, syslog parsing, spreadlogd.conf, the
// combined format and the Log block filters.
import { describe, expect, it } from 'vitest';
import { clfTime, escapeLogItem, formatLogLine } from '../src/apps/logging/combined-format.js';
import { ConfigError, parseLogdConfig } from '../src/apps/logging/config.js';
import { filterLines } from '../src/apps/logging/line-filter.js';
import { LineSplitter } from '../src/apps/logging/line-splitter.js';
import { parseSyslog, parseSyslogUrl } from '../src/apps/logging/syslog.js';
import { batchHeader, parseSequencedBatch, presenceGroup } from '../src/apps/logging/wire.js';

const text = (bytes: Buffer) => bytes.toString('latin1');

describe('LineSplitter', () => {
  it('passes whole lines on, holds a partial line until its newline, and ends it at EOF', () => {
    const splitter = new LineSplitter();
    expect(splitter.push(Buffer.from('a\nbb\ncc'))).toEqual({ bytes: Buffer.from('a\nbb\n'), lines: 2 });
    expect(splitter.push(Buffer.from('c\nd'))).toEqual({ bytes: Buffer.from('ccc\n'), lines: 1 });
    expect(splitter.end()).toEqual({ bytes: Buffer.from('d\n'), lines: 1 });
    expect(splitter.end().lines).toBe(0);
  });

  it('truncates a line longer than the limit and says how much was cut, across chunks', () => {
    const splitter = new LineSplitter(10);
    const first = splitter.push(Buffer.from('short\n0123456789abc'));
    expect(text(first.bytes)).toBe('short\n');
    const second = splitter.push(Buffer.from('def\nnext\n'));
    expect(text(second.bytes)).toBe('0123456789 [tspread: truncated 6 bytes]\nnext\n');
    expect(second.lines).toBe(2);
    expect(splitter.truncatedLines).toBe(1);
  });

  it('keeps binary bytes as they are', () => {
    const junk = Buffer.from([0, 1, 2, 0xff, 0xfe, 0x80, 0x0d, 0x1b]);
    const run = new LineSplitter().push(Buffer.concat([junk, Buffer.from('\n')]));
    expect(run.bytes.subarray(0, junk.length)).toEqual(junk);
  });
});

describe('parseSyslog', () => {
  it('takes the message of an RFC 3164 datagram as nginx sends it, with or without hostname', () => {
    const line = '127.0.0.1 - - [04/Dec/2026:18:00:00 +0000] "GET / HTTP/1.1" 200 5 "-" "curl/8"';
    expect(parseSyslog(Buffer.from(`<190>Dec  4 18:00:00 web1 www: ${line}`))).toEqual({ tag: 'www', hostname: 'web1', message: Buffer.from(line) });
    expect(parseSyslog(Buffer.from(`<190>Dec 14 18:00:00 www: ${line}`))).toEqual({ tag: 'www', hostname: '', message: Buffer.from(line) });
    expect(parseSyslog(Buffer.from(`<13>Dec 14 18:00:00 host app[42]: hello\n`)).message).toEqual(Buffer.from('hello'));
  });

  it('takes the MSG of an RFC 5424 datagram, after structured data and a BOM', () => {
    const bom = Buffer.from([0xef, 0xbb, 0xbf]);
    const datagram = Buffer.concat([Buffer.from('<165>1 2026-12-04T18:00:00.003Z web1 www 42 ID47 [ex@32473 a="x\\]y"] '), bom, Buffer.from('GET /x')]);
    expect(parseSyslog(datagram)).toEqual({ tag: 'www', hostname: 'web1', message: Buffer.from('GET /x') });
    expect(parseSyslog(Buffer.from('<165>1 - - - - - - plain')).message).toEqual(Buffer.from('plain'));
  });

  it('makes one line of any datagram', () => {
    expect(parseSyslog(Buffer.from('no priority\nat all\n\0')).message).toEqual(Buffer.from('no priority at all'));
  });

  it('parses udp:// addresses', () => {
    expect(parseSyslogUrl('udp://127.0.0.1:5514')).toEqual({ host: '127.0.0.1', port: 5514 });
    expect(parseSyslogUrl('udp://[::1]:514')).toEqual({ host: '::1', port: 514 });
    expect(() => parseSyslogUrl('tcp://127.0.0.1:5514')).toThrow(/udp:\/\/host:port/);
  });
});

describe('spreadlogd.conf', () => {
  it('reads BufferSize, Spread blocks with and without Host, and Log blocks', () => {
    const config = parseLogdConfig(`
      BufferSize = 4096   # bytes
      Spread {
        Port = 4803
        Log { Group = www  File = /var/log/www.log }
        Log {
          group = "www"
          File = "/var/log/api log"
          Match = "GET /api/"
          RewriteTimestamp = CommonLogFormat
        }
      }
      Spread { Port = 4804 Host = 10.0.0.5 Log { Group = ssl File = /var/log/ssl.log } }
    `);
    expect(config.bufferSize).toBe(4096);
    expect(config.spreads.map((spread) => [spread.port, spread.host])).toEqual([
      [4803, undefined],
      [4804, '10.0.0.5'],
    ]);
    const api = config.spreads[0].logs[1];
    expect(api).toMatchObject({ group: 'www', file: '/var/log/api log', rewriteTimestamp: true });
    expect(api.match?.test('"GET /api/v1 HTTP/1.1"')).toBe(true);
  });

  it.each([
    ['Spred { }', /:1: unknown keyword 'Spred'/],
    ['Spread {\n Log { File = /x }\n}', /:2: the Log block of line 2 has no Group/],
    ['Spread { Log { Group = www File = /x Match = "(" } }', /Match: Invalid regular expression/],
    ['Spread { Port = 99999 Log { Group = www File = /x } }', /Port must be an integer in 1\.\.65535/],
    ['Spread { Log { Group = www File = /x }', /expected '}', found the end of the file/],
    ['BufferSize = 8192', /no Spread block/],
    ['Spread { Log { Group = a-group-name-far-too-long-here File = /x } }', /too long/],
  ])('rejects %j with a clear error', (source, message) => {
    expect(() => parseLogdConfig(source, 'test.conf')).toThrow(ConfigError);
    expect(() => parseLogdConfig(source, 'test.conf')).toThrow(message);
  });
});

describe('combined log format', () => {
  const facts = {
    remoteHost: '127.0.0.1',
    remoteUser: null,
    time: new Date(2026, 11, 4, 9, 5, 7),
    method: 'GET',
    url: '/a?b=c',
    httpVersion: '1.1',
    status: 200,
    bodyBytes: 0,
    referer: undefined,
    userAgent: 'curl/8 "x"',
  };

  it('writes Apache combined and common lines, escaping as Apache does', () => {
    const time = clfTime(facts.time);
    expect(time).toMatch(/^04\/Dec\/2026:09:05:07 [+-]\d{4}$/);
    expect(formatLogLine(facts, 'combined')).toBe(`127.0.0.1 - - [${time}] "GET /a?b=c HTTP/1.1" 200 - "-" "curl/8 \\"x\\""`);
    expect(formatLogLine({ ...facts, remoteUser: 'bob', bodyBytes: 12 }, 'common')).toBe(`127.0.0.1 - bob [${time}] "GET /a?b=c HTTP/1.1" 200 12`);
    expect(escapeLogItem('a\\b\tc\u00e9\x01')).toBe('a\\\\b\\tc\\xc3\\xa9\\x01');
  });

  it('Log block filters: Match keeps matching lines, RewriteTimestamp puts the collector time in', () => {
    const lines = Buffer.from('1.2.3.4 - - [01/Jan/2020:00:00:00 +0000] "GET /api/x HTTP/1.1" 200 1\nother\n');
    const base = { group: 'www', file: '/x', line: 1 };
    expect(text(filterLines({ ...base, match: /api/, rewriteTimestamp: false }, lines, 2, () => new Date()).bytes)).toBe(
      '1.2.3.4 - - [01/Jan/2020:00:00:00 +0000] "GET /api/x HTTP/1.1" 200 1\n',
    );
    const now = new Date(2026, 0, 2, 3, 4, 5);
    const rewritten = filterLines({ ...base, match: null, rewriteTimestamp: true }, lines, 2, () => now);
    expect(text(rewritten.bytes)).toBe(`1.2.3.4 - - [${clfTime(now)}] "GET /api/x HTTP/1.1" 200 1\nother\n`);
  });
});

describe('wire', () => {
  it('round-trips a sequenced batch header and names presence groups', () => {
    const data = Buffer.concat([batchHeader('abcdefghij', 42), Buffer.from('x\ny\n')]);
    expect(parseSequencedBatch(data)).toEqual({ senderId: 'abcdefghij', seq: 42, lines: Buffer.from('x\ny\n') });
    expect(parseSequencedBatch(Buffer.from('garbage\n'))).toBeNull();
    expect(presenceGroup('www')).toBe('www:logd');
  });
});
