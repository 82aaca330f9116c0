/**
 * spreadlogd's configuration format:
 *
 *   BufferSize = 65536
 *   Spread {
 *     Port = 4803            # default 4803
 *     Host = 10.0.0.5        # none: the local daemon's Unix socket
 *     Log {
 *       Group = www
 *       File = /var/log/www/access_log
 *       Match = "GET /api/"  # optional: only lines matching this regex
 *       RewriteTimestamp = CommonLogFormat   # optional
 *     }
 *   }
 *
 * Keywords are case-insensitive; values may be quoted; `#` starts a comment.
 * Errors name the file and line.
 */
import { readFileSync } from 'node:fs';
import { presenceGroup } from './wire.js';

export interface LogBlock {
  group: string;
  file: string;
  match: RegExp | null;
  rewriteTimestamp: boolean;
  line: number;
}

export interface SpreadBlock {
  port: number;
  /** Undefined: the local daemon's Unix socket. */
  host: string | undefined;
  logs: LogBlock[];
}

export interface LogdConfig {
  /** Bytes a file collects before it is written (it is also written at the end of every event-loop turn). */
  bufferSize: number;
  spreads: SpreadBlock[];
}

export class ConfigError extends Error {}

interface Token {
  text: string;
  quoted: boolean;
  line: number;
}

const BUFFER_SIZE_DEFAULT = 65_536;
const PORT_DEFAULT = 4803;

function tokenize(text: string, where: string): Token[] {
  const tokens: Token[] = [];
  let line = 1;
  for (let at = 0; at < text.length; ) {
    const char = text[at];
    if (char === '\n') line++;
    if (/\s/.test(char)) {
      at++;
    } else if (char === '#') {
      while (at < text.length && text[at] !== '\n') at++;
    } else if (char === '{' || char === '}' || char === '=') {
      tokens.push({ text: char, quoted: false, line });
      at++;
    } else if (char === '"') {
      let value = '';
      at++;
      while (at < text.length && text[at] !== '"') {
        if (text[at] === '\n') throw new ConfigError(`${where}:${line}: unterminated string`);
        if (text[at] === '\\' && text[at + 1] === '"') at++;
        value += text[at++];
      }
      if (at >= text.length) throw new ConfigError(`${where}:${line}: unterminated string`);
      at++;
      tokens.push({ text: value, quoted: true, line });
    } else {
      const start = at;
      while (at < text.length && !/[\s{}="]/.test(text[at])) at++;
      tokens.push({ text: text.slice(start, at), quoted: false, line });
    }
  }
  return tokens;
}

class Parser {
  #at = 0;
  constructor(
    readonly tokens: Token[],
    readonly where: string,
  ) {}

  fail(message: string, token = this.tokens[Math.min(this.#at, this.tokens.length - 1)]): never {
    throw new ConfigError(`${this.where}:${token?.line ?? 1}: ${message}`);
  }

  peek(): Token | undefined {
    return this.tokens[this.#at];
  }

  next(what: string): Token {
    const token = this.tokens[this.#at++];
    if (token === undefined) this.fail(`expected ${what}, found the end of the file`);
    return token;
  }

  expect(symbol: string): void {
    const token = this.next(`'${symbol}'`);
    if (token.text !== symbol || token.quoted) this.fail(`expected '${symbol}', found '${token.text}'`, token);
  }

  /** `= value` after a keyword. */
  value(keyword: Token): string {
    this.expect('=');
    const token = this.next(`a value for ${keyword.text}`);
    if (!token.quoted && /^[{}=]$/.test(token.text)) this.fail(`expected a value for ${keyword.text}, found '${token.text}'`, token);
    return token.text;
  }

  integer(keyword: Token, min: number, max: number): number {
    const text = this.value(keyword);
    const value = Number(text);
    if (!/^\d+$/.test(text) || value < min || value > max) this.fail(`${keyword.text} must be an integer in ${min}..${max}, not '${text}'`, keyword);
    return value;
  }

  /** Keyword tokens until the closing brace of the current block. */
  *block(): Generator<Token> {
    this.expect('{');
    for (;;) {
      const token = this.next("'}'");
      if (token.text === '}' && !token.quoted) return;
      yield token;
    }
  }
}

export function parseLogdConfig(text: string, where = 'spreadlogd.conf'): LogdConfig {
  const parser = new Parser(tokenize(text, where), where);
  const config: LogdConfig = { bufferSize: BUFFER_SIZE_DEFAULT, spreads: [] };
  while (parser.peek() !== undefined) {
    const keyword = parser.next('a keyword');
    switch (keyword.text.toLowerCase()) {
      case 'buffersize':
        config.bufferSize = parser.integer(keyword, 1024, 64 * 1024 * 1024);
        break;
      case 'spread':
        config.spreads.push(parseSpread(parser));
        break;
      default:
        parser.fail(`unknown keyword '${keyword.text}' (expected BufferSize or Spread)`, keyword);
    }
  }
  if (config.spreads.length === 0) parser.fail('no Spread block: nothing to collect');
  return config;
}

function parseSpread(parser: Parser): SpreadBlock {
  const spread: SpreadBlock = { port: PORT_DEFAULT, host: undefined, logs: [] };
  for (const keyword of parser.block()) {
    switch (keyword.text.toLowerCase()) {
      case 'port':
        spread.port = parser.integer(keyword, 1, 65535);
        break;
      case 'host':
        spread.host = parser.value(keyword);
        break;
      case 'log':
        spread.logs.push(parseLog(parser, keyword));
        break;
      default:
        parser.fail(`unknown keyword '${keyword.text}' in Spread (expected Port, Host or Log)`, keyword);
    }
  }
  if (spread.logs.length === 0) parser.fail('a Spread block without a Log block');
  return spread;
}

function parseLog(parser: Parser, opening: Token): LogBlock {
  const log: Partial<LogBlock> = { match: null, rewriteTimestamp: false, line: opening.line };
  for (const keyword of parser.block()) {
    switch (keyword.text.toLowerCase()) {
      case 'group': {
        const group = parser.value(keyword);
        try {
          presenceGroup(group);
        } catch (error) {
          parser.fail((error as Error).message, keyword);
        }
        log.group = group;
        break;
      }
      case 'file':
        log.file = parser.value(keyword);
        break;
      case 'match': {
        const pattern = parser.value(keyword);
        try {
          log.match = new RegExp(pattern);
        } catch (error) {
          parser.fail(`Match: ${(error as Error).message}`, keyword);
        }
        break;
      }
      case 'rewritetimestamp': {
        const value = parser.value(keyword);
        if (value.toLowerCase() !== 'commonlogformat') parser.fail(`RewriteTimestamp supports CommonLogFormat, not '${value}'`, keyword);
        log.rewriteTimestamp = true;
        break;
      }
      default:
        parser.fail(`unknown keyword '${keyword.text}' in Log (expected Group, File, Match or RewriteTimestamp)`, keyword);
    }
  }
  if (log.group === undefined) parser.fail(`the Log block of line ${opening.line} has no Group`, opening);
  if (log.file === undefined) parser.fail(`the Log block of line ${opening.line} has no File`, opening);
  return log as LogBlock;
}

/** Reads and parses a configuration file; a file that cannot be read is a ConfigError too. */
export function loadLogdConfig(path: string): LogdConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`cannot read ${path}: ${(error as Error).message}`);
  }
  return parseLogdConfig(text, path);
}
