/**
 * spread.conf tokenizer (§8.1). It mirrors Spread's flex scanner: a bare word is the longest
 * run of characters other than whitespace, `#`, `{`, `}`, `[`, `]`, so `=`, `:` and `;`
 * only stand alone when whitespace separates them (`Window =160` yields the word `=160`,
 * `Window=160` a single word). Only after the whole word is taken is it classified.
 */
import { ConfigError } from './errors.js';
import { keywordOf } from './keywords.js';
import { parseIpv4, parseIpv6, type IpAddress } from './address.js';

export type TokenKind =
  | 'openBrace' | 'closeBrace' | 'equals' | 'colon' | 'semicolon' | 'bang'
  | 'keyword' | 'number' | 'address' | 'string' | 'end';

export interface AddressLiteral {
  ip: IpAddress;
  port: number | null;
}

export interface Token {
  kind: TokenKind;
  /** Exactly as written (quotes removed for quoted strings); keywords normalised. */
  text: string;
  line: number;
  column: number;
  /** For strings: whether it was quoted (a quoted word is never a keyword). */
  quoted?: boolean;
  /** For numbers. */
  numberValue?: number;
  /** For addresses. */
  address?: AddressLiteral;
}

const PUNCTUATION: Readonly<Record<string, TokenKind>> = { '=': 'equals', ':': 'colon', ';': 'semicolon', '!': 'bang' };
const WHITESPACE = new Set([' ', '\t', '\r', '\n', '\f', '\v']);
const WORD_BREAKS = new Set([...WHITESPACE, '#', '{', '}', '[', ']']);
const NUMBER_PATTERN = /^\d{1,9}$/;

/** Largest port a segment may use: the ring also needs port + 1 for the token (§1.2). */
export const MAX_SEGMENT_PORT = 65534;

export function tokenize(text: string, source: string): Token[] {
  const tokens: Token[] = [];
  let offset = 0;
  let line = 1;
  let column = 1;

  const fail = (atLine: number, atColumn: number, message: string): never => {
    throw new ConfigError(source, atLine, atColumn, message);
  };
  const advance = (count: number): void => {
    for (let i = 0; i < count; i++) {
      if (text[offset] === '\n') { line++; column = 1; } else { column++; }
      offset++;
    }
  };

  while (offset < text.length) {
    const char = text[offset];
    if (WHITESPACE.has(char)) {
      advance(1);
      continue;
    }
    if (char === '#') {
      while (offset < text.length && text[offset] !== '\n') advance(1);
      continue;
    }
    const startLine = line;
    const startColumn = column;
    if (char === '{' || char === '}') {
      tokens.push({ kind: char === '{' ? 'openBrace' : 'closeBrace', text: char, line, column });
      advance(1);
      continue;
    }
    if (char === ']') fail(line, column, "unexpected ']' without a matching '['");
    if (char === '[') {
      const literal = readBracketedAddress(text, offset);
      if (!literal) {
        fail(line, column, `bad bracketed IPv6 address '${wordAt(text, offset)}' (expected [addr] or [addr]:port)`);
      } else {
        const address = addressLiteral(literal.host, literal.port, true);
        if (typeof address === 'string') fail(line, column, `${address} in '${literal.text}'`);
        else tokens.push({ kind: 'address', text: literal.text, line, column, address });
        advance(literal.text.length);
      }
      continue;
    }
    if (char === '"' || char === "'") {
      const close = text.indexOf(char, offset + 1);
      const newline = text.indexOf('\n', offset + 1);
      if (close < 0 || (newline >= 0 && newline < close)) fail(line, column, `unterminated ${char}-quoted string`);
      tokens.push({ kind: 'string', text: text.slice(offset + 1, close), line, column, quoted: true });
      advance(close + 1 - offset);
      continue;
    }
    const word = wordAt(text, offset);
    tokens.push(classifyWord(word, startLine, startColumn, fail));
    advance(word.length);
  }
  tokens.push({ kind: 'end', text: 'end of file', line, column });
  return tokens;
}

function wordAt(text: string, offset: number): string {
  let end = offset + 1;
  while (end < text.length && !WORD_BREAKS.has(text[end])) end++;
  return text.slice(offset, end);
}

type Fail = (line: number, column: number, message: string) => never;

function classifyWord(word: string, line: number, column: number, fail: Fail): Token {
  const punctuation = PUNCTUATION[word];
  if (punctuation) return { kind: punctuation, text: word, line, column };
  const keyword = keywordOf(word);
  if (keyword !== null) return { kind: 'keyword', text: keyword, line, column };
  if (NUMBER_PATTERN.test(word)) return { kind: 'number', text: word, line, column, numberValue: Number(word) };

  // Dotted-quad shapes are meant as addresses, so a bad one is an error rather than a name.
  const ipv4WithPort = /^(\d+\.\d+\.\d+\.\d+)(?::(\d+))?$/.exec(word);
  if (ipv4WithPort) {
    const address = addressLiteral(ipv4WithPort[1], ipv4WithPort[2] ?? null, false);
    if (typeof address === 'string') return fail(line, column, `${address} in '${word}'`);
    return { kind: 'address', text: word, line, column, address };
  }
  if (word.includes(':') && !word.includes('=') && !word.includes(';')) {
    const ipv6 = parseIpv6(word);
    if (ipv6) return { kind: 'address', text: word, line, column, address: { ip: ipv6, port: null } };
  }
  return { kind: 'string', text: word, line, column, quoted: false };
}

function readBracketedAddress(text: string, offset: number): { text: string; host: string; port: string | null } | null {
  const match = /^\[([^\]\s#{}[]*)\](?::(\d+))?/.exec(text.slice(offset, offset + 80));
  if (!match) return null;
  // A port glued to something else (`[::1]:4803x`) is not an address.
  const next = text[offset + match[0].length];
  if (next !== undefined && !WORD_BREAKS.has(next)) return null;
  return { text: match[0], host: match[1], port: match[2] ?? null };
}

/** The literal, or why it is not one. */
function addressLiteral(host: string, portText: string | null, bracketed: boolean): AddressLiteral | string {
  const ip = bracketed ? parseIpv6(host) : parseIpv4(host);
  if (!ip) return bracketed ? 'bad IPv6 address' : 'bad IPv4 address (four decimal octets 0-255, no leading zeros)';
  if (portText === null) return { ip, port: null };
  const port = Number(portText);
  if (!/^\d{1,5}$/.test(portText) || port < 1 || port > MAX_SEGMENT_PORT) {
    return `bad port ${portText} (1-${MAX_SEGMENT_PORT}; the ring also uses port + 1)`;
  }
  return { ip, port };
}
