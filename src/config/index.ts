/** Public surface of the configuration module. */
export type * from './types.js';
export { ConfigError } from './errors.js';
export { tokenize, type Token, type TokenKind } from './lexer.js';
export { parseConfig } from './parser.js';
export { configHash, configHashText, oneAtATimeHash, virtualId } from './hash.js';
export { defaultConfig, DEFAULT_CONFIG_TEXT } from './defaults.js';
export { loadConfig, chooseIdentity, localAddresses, configDiff, configSearchPath, type ConfigSearchOptions } from './load.js';
