/** A token stream with the error helpers every grammar rule needs. */
import { ConfigError, type SourcePosition } from './errors.js';
import type { Token, TokenKind } from './lexer.js';

const TOKEN_DESCRIPTIONS: Readonly<Record<TokenKind, string>> = {
  openBrace: "'{'", closeBrace: "'}'", equals: "'='", colon: "':'", semicolon: "';'", bang: "'!'",
  keyword: 'a keyword', number: 'a number', address: 'an address', string: 'a string', end: 'end of file',
};

export class TokenCursor {
  private index = 0;

  constructor(private readonly tokens: Token[], readonly source: string) {}

  peek(ahead = 0): Token {
    return this.tokens[Math.min(this.index + ahead, this.tokens.length - 1)];
  }

  next(): Token {
    const token = this.peek();
    if (token.kind !== 'end') this.index++;
    return token;
  }

  isKeyword(word: string): boolean {
    const token = this.peek();
    return token.kind === 'keyword' && token.text === word;
  }

  /** Consumes a token of `kind`, or fails naming what was found instead. */
  expect(kind: TokenKind, context: string): Token {
    const token = this.peek();
    if (token.kind !== kind) this.failAt(token, `expected ${TOKEN_DESCRIPTIONS[kind]} ${context}, found ${describe(token)}`);
    return this.next();
  }

  failAt(position: SourcePosition, message: string): never {
    throw new ConfigError(this.source, position.line, position.column, message);
  }
}

export function describe(token: Token): string {
  if (token.kind === 'end') return 'end of file';
  return token.quoted ? `"${token.text}"` : `'${token.text}'`;
}
