import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseConfig } from '../src/config/parser.js';
import { configHash, configHashText, oneAtATimeHash, virtualId } from '../src/config/hash.js';
import { defaultConfig } from '../src/config/defaults.js';

const FIXTURES = join(import.meta.dirname, 'fixtures', 'config');
const load = (name: string) => parseConfig(readFileSync(join(FIXTURES, name), 'utf8'), name);

describe('VirtualID (§8.7)', () => {
  it('matches the values Spread 5.0.1 was seen to use', () => {
    expect(virtualId('localhost')).toBe(482711334);
    expect(virtualId('d1')).toBe(1552775919);
    expect(virtualId('d2')).toBe(348480928);
  });

  it('is the one-at-a-time hash over the name and its NUL', () => {
    expect(virtualId('d1')).toBe(oneAtATimeHash('d1'));
  });

  it('treats bytes above 127 as signed chars and stays an unsigned 32-bit value', () => {
    const value = oneAtATimeHash('é');
    expect(Number.isInteger(value) && value >= 0 && value <= 0xffffffff).toBe(true);
    expect(value).not.toBe(oneAtATimeHash('\u00c3'));
  });
});

describe('configuration hash (§8.6)', () => {
  it('hashes the observed one-daemon file to 604077194 on the original ring', () => {
    // Port 14803: the file Spread 5.0.1 hashed to these values (found by trying variants of the sample file).
    const config = load('one-daemon.conf');
    expect(configHashText(config)).toBe(
      "Segment: port = 14803; [127.0.0.255]\n\t'localhost' [127.0.0.1] [482711334]\n\nVersion: 5\nProtocol: Original Ring\n");
    expect(config.hash).toBe(604077194);
    expect(configHash(config)).toBe(604077194);
  });

  it('hashes the same file with AcceleratedRing = true to 437325424', () => {
    const config = load('one-daemon-accelerated.conf');
    expect(config.params.acceleratedRing).toBe(true);
    expect(config.hash).toBe(437325424);
  });

  it('hashes the built-in default (port 4803) differently from the port-14803 file', () => {
    expect(defaultConfig().hash).not.toBe(604077194);
    expect(configHashText(defaultConfig())).toContain('Segment: port = 4803; [127.0.0.255]\n');
  });

  it('lists every segment and daemon in order', () => {
    expect(configHashText(load('two-segments.conf'))).toBe(
      'Segment: port = 4803; [225.1.2.3]\n' +
      `\t'd1' [127.0.0.1] [1552775919]\n\t'd2' [127.0.0.2] [348480928]\n\n` +
      'Segment: port = 4803; [225.1.2.4]\n' +
      `\t'd3' [127.0.0.3] [${virtualId('d3')}]\n\n` +
      'Version: 5\nProtocol: Original Ring\n');
  });

  it('leaves segment addresses out with ExcludeSegAddrsFromHash and ignores non-hashed parameters', () => {
    const text = readFileSync(join(FIXTURES, 'three-daemons.conf'), 'utf8');
    const excluded = parseConfig(`ExcludeSegAddrsFromHash = yes\n${text}`, 'f');
    expect(configHashText(excluded).startsWith('Segment: port = 4803;\n')).toBe(true);
    const tuned = parseConfig(`Window = 300\nDebugFlags = { ALL }\nMaxSessionBytes = 5\n${text}`, 'f');
    expect(tuned.hash).toBe(load('three-daemons.conf').hash);
  });

  it('writes IPv6 addresses as eight 4-digit groups without zone', () => {
    const config = parseConfig('Spread_Segment [ff02::1]:4803 {\n a fe80::2%eth0 VirtualID = 3\n}', 'f');
    expect(configHashText(config)).toBe(
      'Segment: port = 4803; [ff02:0000:0000:0000:0000:0000:0000:0001]\n' +
      "\t'a' [fe80:0000:0000:0000:0000:0000:0000:0002] [3]\n\nVersion: 5\nProtocol: Original Ring\n");
  });

  it('uses a configured VirtualID instead of the derived one', () => {
    const config = parseConfig('Spread_Segment 127.0.0.255:14803 {\n localhost 127.0.0.1 VirtualID = 482711334\n}', 'f');
    expect(config.hash).toBe(604077194);
  });
});
