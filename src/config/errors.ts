/**
 * The one error type of the configuration module. Every parse or validation problem
 * carries the place it was found so an operator can jump straight to it.
 */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';

  constructor(
    readonly file: string,
    /** 1-based; 0 when the problem has no single place in the file (e.g. identity choice). */
    readonly line: number,
    /** 1-based; 0 together with `line` = 0. */
    readonly column: number,
    readonly detail: string,
  ) {
    super(line > 0 ? `${file}:${line}:${column}: ${detail}` : `${file}: ${detail}`);
  }

  /** `file:line:col: message`, the form editors and compilers use. */
  override toString(): string {
    return this.message;
  }
}

/** A place in a configuration text. */
export interface SourcePosition {
  line: number;
  column: number;
}
