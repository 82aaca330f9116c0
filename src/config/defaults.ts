/** The configuration a daemon runs when started without -c and no spread.conf is found. */
import type { SpreadConfig } from './types.js';
import { parseConfig } from './parser.js';

/** Spread's minimal sample file: one local daemon on the loopback broadcast segment. */
export const DEFAULT_CONFIG_TEXT = 'Spread_Segment 127.0.0.255:4803 {\n\tlocalhost 127.0.0.1\n}\n';

export const DEFAULT_CONFIG_SOURCE = '<default>';

export function defaultConfig(): SpreadConfig {
  return parseConfig(DEFAULT_CONFIG_TEXT, DEFAULT_CONFIG_SOURCE);
}
