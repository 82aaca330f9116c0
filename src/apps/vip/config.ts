/**
 * `vip.conf`: wackamole's configuration directives where they fit, plus tspread's
 * own (Quorum, Up/Down hooks, Name). Directive names are case-insensitive like
 * wackamole's; every error names the line.
 *
 *   Spread = 4803                  Group = vip        Control = /run/tspread-vip.sock
 *   Mature = 5s                    Quorum = 2         Name = web1
 *   Balance { Interval = 4s  AcquisitionsPerRound = all }
 *   Prefer None | Prefer { 10.0.0.10 }
 *   VirtualInterfaces { { eth0:10.0.0.10/24 eth0:10.0.0.11/24 } eth0:10.0.0.12/24 }
 *   Notify { eth0:10.0.0.1/32 arp-cache }
 *   Up = /etc/vip/up.sh            Down = /etc/vip/down.sh
 */
import { isIPv4 } from 'node:net';

/** One address on one device: `dev:address/prefix`. */
export interface DeviceAddress {
  device: string;
  address: string;
  prefix: number;
}

/** Addresses that always move together; identified cluster-wide by `id` (the first address). */
export interface VirtualInterface {
  id: string;
  addresses: DeviceAddress[];
}

export interface VipConfig {
  spread: string;
  spreadRetryMs: number;
  group: string;
  control: string;
  name: string | null;
  matureMs: number;
  balanceIntervalMs: number;
  /** Addresses moved per balance round; Infinity for `all`. */
  acquisitionsPerRound: number;
  quorum: number;
  /** Virtual interface ids this host prefers. */
  prefer: string[];
  interfaces: VirtualInterface[];
  /** Hosts told by ARP about every move. */
  notify: DeviceAddress[];
  /** Also tell every neighbour in this host's ARP cache. */
  notifyArpCache: boolean;
  up: string | null;
  down: string | null;
}

export class VipConfigError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    message: string,
  ) {
    super(`${file}:${line}: ${message}`);
    this.name = 'VipConfigError';
  }
}

interface Token {
  text: string;
  line: number;
}

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  text.split('\n').forEach((raw, index) => {
    const line = raw.replace(/#.*$/, '');
    for (const match of line.matchAll(/[{}=]|[^\s{}=]+/g)) tokens.push({ text: match[0], line: index + 1 });
  });
  return tokens;
}

const DURATION_UNITS_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, '': 1000 };

export const VIP_DEFAULTS = {
  spread: '4803',
  spreadRetryMs: 5000,
  group: 'vip',
  control: '/run/tspread-vip.sock',
  matureMs: 5000,
  balanceIntervalMs: 4000,
  acquisitionsPerRound: Infinity,
  quorum: 1,
} as const;

/** Parses `text` (read from `file`, named in errors). Throws VipConfigError. */
export function parseVipConfig(text: string, file = 'vip.conf'): VipConfig {
  const tokens = tokenize(text);
  let position = 0;
  const lastLine = () => tokens.at(-1)?.line ?? 1;
  const fail = (line: number, message: string): never => {
    throw new VipConfigError(file, line, message);
  };
  const next = (what: string): Token => tokens[position++] ?? fail(lastLine(), `expected ${what}, found the end of the file`);
  const expect = (text: string): Token => {
    const token = next(`"${text}"`);
    if (token.text !== text) fail(token.line, `expected "${text}", found "${token.text}"`);
    return token;
  };
  const value = (): Token => {
    expect('=');
    const token = next('a value');
    if (token.text === '{' || token.text === '}') fail(token.line, `expected a value, found "${token.text}"`);
    return token;
  };
  const duration = (token: Token): number => {
    const match = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(token.text);
    if (match === null) return fail(token.line, `"${token.text}" is not a duration (e.g. 5s, 500ms)`);
    return Math.round(Number(match[1]) * DURATION_UNITS_MS[match[2] ?? '']);
  };
  const count = (token: Token, min: number): number => {
    const parsed = Number(token.text);
    if (!Number.isInteger(parsed) || parsed < min) fail(token.line, `"${token.text}" is not an integer ≥ ${min}`);
    return parsed;
  };
  const deviceAddress = (token: Token): DeviceAddress => {
    const match = /^([^:\s]+):([0-9.]+)(?:\/(\d+))?$/.exec(token.text);
    if (match === null || !isIPv4(match[2])) return fail(token.line, `"${token.text}" is not dev:address/prefix (e.g. eth0:10.0.0.10/24)`);
    const prefix = match[3] === undefined ? 32 : Number(match[3]);
    if (prefix > 32) fail(token.line, `prefix /${prefix} is longer than 32`);
    return { device: match[1], address: match[2], prefix };
  };
  /** `{ item item … }` where an item is a word or, when `nested`, another `{ … }`. */
  const block = <T>(item: (token: Token) => T): T[] => {
    expect('{');
    const items: T[] = [];
    for (;;) {
      const token = next('"}"');
      if (token.text === '}') return items;
      items.push(item(token));
    }
  };

  const config: VipConfig = {
    ...VIP_DEFAULTS,
    name: null,
    prefer: [],
    interfaces: [],
    notify: [],
    notifyArpCache: false,
    up: null,
    down: null,
  };
  const seenAddresses = new Map<string, number>();
  const addInterface = (addresses: DeviceAddress[], line: number) => {
    if (addresses.length === 0) fail(line, 'an empty virtual interface');
    for (const { address } of addresses) {
      const earlier = seenAddresses.get(address);
      if (earlier !== undefined) fail(line, `${address} is already a virtual address (line ${earlier})`);
      seenAddresses.set(address, line);
    }
    config.interfaces.push({ id: addresses[0].address, addresses });
  };
  let preferLine = 0;

  while (position < tokens.length) {
    const directive = next('a directive');
    switch (directive.text.toLowerCase()) {
      case 'spread':
        config.spread = value().text;
        break;
      case 'spreadretryinterval':
        config.spreadRetryMs = duration(value());
        break;
      case 'group': {
        const token = value();
        if (token.text.length > 31) fail(token.line, `group name "${token.text}" is longer than 31 bytes`);
        config.group = token.text;
        break;
      }
      case 'control':
        config.control = value().text;
        break;
      case 'name':
        config.name = value().text;
        break;
      case 'mature':
        config.matureMs = duration(value());
        break;
      case 'quorum':
        config.quorum = count(value(), 1);
        break;
      case 'up':
        config.up = value().text;
        break;
      case 'down':
        config.down = value().text;
        break;
      case 'arp-cache':
        duration(value()); // wackamole's ARP-cache sharing period: accepted; tspread reads the cache at each move
        break;
      case 'balance':
        expect('{');
        for (let token = next('"}"'); token.text !== '}'; token = next('"}"')) {
          const key = token.text.toLowerCase();
          if (key === 'interval') config.balanceIntervalMs = duration(value());
          else if (key === 'acquisitionsperround') {
            const amount = value();
            config.acquisitionsPerRound = amount.text.toLowerCase() === 'all' ? Infinity : count(amount, 1);
          } else fail(token.line, `unknown Balance setting "${token.text}" (Interval, AcquisitionsPerRound)`);
        }
        break;
      case 'prefer': {
        preferLine = directive.line;
        const peek = tokens[position];
        if (peek?.text.toLowerCase() === 'none') {
          position++;
          config.prefer = [];
        } else {
          config.prefer = block((token) => (token.text.includes(':') ? deviceAddress(token).address : token.text));
        }
        break;
      }
      case 'virtualinterfaces':
        expect('{');
        for (let token = next('"}"'); token.text !== '}'; token = next('"}"')) {
          if (token.text === '{') {
            position--;
            addInterface(block(deviceAddress), token.line);
          } else addInterface([deviceAddress(token)], token.line);
        }
        break;
      case 'notify':
        for (const token of block((t) => t)) {
          if (token.text.toLowerCase() === 'arp-cache') config.notifyArpCache = true;
          else config.notify.push(deviceAddress(token));
        }
        break;
      default:
        fail(directive.line, `unknown directive "${directive.text}"`);
    }
  }
  if (config.interfaces.length === 0) fail(lastLine(), 'no VirtualInterfaces');
  for (const preferred of config.prefer) {
    const owner = config.interfaces.find((vif) => vif.addresses.some((a) => a.address === preferred));
    if (owner === undefined) fail(preferLine, `Prefer names ${preferred}, which is no virtual address`);
  }
  config.prefer = config.prefer.map((address) => config.interfaces.find((vif) => vif.addresses.some((a) => a.address === address))!.id);
  return config;
}
