import { describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/parser.js';
import { datagramBytesFor, defaultDatagramBytes } from '../src/ring/from-config.js';

const LOOPBACK = `Spread_Segment 127.255.255.255:4803 {
  d1 127.0.0.1
  d2 127.0.0.2
  d3 127.0.0.3
}`;
const LAN = `Spread_Segment 192.168.1.255:4803 {
  a 192.168.1.10
  b 192.168.1.11
}`;
const MIXED = `Spread_Segment 127.255.255.255:4803 {
  d1 127.0.0.1
}
Spread_Segment 192.168.1.255:4803 {
  b 192.168.1.11
}`;

describe('default DatagramBytes', () => {
  it('is one Ethernet MTU whenever a daemon is off loopback', () => {
    expect(defaultDatagramBytes(parseConfig(LAN, 'lan.conf'), 4 * 1024 * 1024)).toBe(1472);
    expect(defaultDatagramBytes(parseConfig(MIXED, 'mixed.conf'), 4 * 1024 * 1024)).toBe(1472);
  });

  it('on loopback grows with the receive buffer so that a whole window fits', () => {
    const config = parseConfig(LOOPBACK, 'lo.conf');
    expect(defaultDatagramBytes(config, 4 * 1024 * 1024)).toBe(32768); // 160 × 32 KiB ≤ 2 × 4 MiB
    expect(defaultDatagramBytes(config, 1024 * 1024)).toBe(8192);
    expect(defaultDatagramBytes(config, 212_992)).toBe(2048); // Linux's default rmem_max
    expect(defaultDatagramBytes(config, 64 * 1024)).toBe(1472); // never below the LAN default
    expect(defaultDatagramBytes(config, null)).toBe(1472); // buffer unknown: no guess
    const smallWindow = parseConfig(`${LOOPBACK}\nWindow = 40\nPersonalWindow = 10`, 'lo.conf');
    expect(defaultDatagramBytes(smallWindow, 212_992)).toBe(8192);
  });

  it('fills one jumbo frame on a one-segment network whose link has a larger MTU', () => {
    const lan = parseConfig(LAN, 'lan.conf');
    expect(defaultDatagramBytes(lan, 4 * 1024 * 1024, 9000)).toBe(8972);
    expect(defaultDatagramBytes(lan, 4 * 1024 * 1024, 1500)).toBe(1472);
    expect(defaultDatagramBytes(lan, 4 * 1024 * 1024, null)).toBe(1472); // MTU unknown
    expect(defaultDatagramBytes(lan, null, 9000)).toBe(1472); // buffer unknown
    expect(defaultDatagramBytes(lan, 212_992, 9000)).toBe(2662); // a whole Window still fits: ⌊2 × 212 992 / 160⌋
    const lan6 = `ActiveIPVersion = IPv6\nSpread_Segment [ff02::1]:4803 {\n  a fd00::10\n  b fd00::11\n}`;
    expect(defaultDatagramBytes(parseConfig(lan6, 'lan6.conf'), 4 * 1024 * 1024, 9000)).toBe(8952);
    // Several segments are routed: the path may not carry jumbo frames.
    const routed = parseConfig(`${LAN}\nSpread_Segment 10.1.1.255:4803 {\n  c 10.1.1.5\n}`, 'routed.conf');
    expect(defaultDatagramBytes(routed, 4 * 1024 * 1024, 9000)).toBe(1472);
  });

  it('an explicit DatagramBytes always wins', () => {
    expect(datagramBytesFor(parseConfig(`${LOOPBACK}\nDatagramBytes = 1472`, 'lo.conf'), 4 * 1024 * 1024)).toBe(1472);
    expect(datagramBytesFor(parseConfig(`${LAN}\nDatagramBytes = 9000`, 'lan.conf'), null)).toBe(9000);
    expect(datagramBytesFor(parseConfig(`${LAN}\nDatagramBytes = 1472`, 'lan.conf'), 4 * 1024 * 1024, 9000)).toBe(1472);
    // The largest UDP payload less a recovery wrapper.
    expect(datagramBytesFor(parseConfig(`${LAN}\nDatagramBytes = 65507`, 'lan.conf'), null)).toBeLessThan(65507);
  });
});
