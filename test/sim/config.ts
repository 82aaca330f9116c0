/** Hand-built SpreadConfig for ring tests: one segment, daemons d1…dn at the given addresses. */
import { defaultConfig } from '../../src/config/defaults.js';
import type { SpreadConfig } from '../../src/config/types.js';

export function ringTestConfig(addresses: string[], port: number, params: Partial<SpreadConfig['params']> = {}, hash = 0x7e57c0de): SpreadConfig {
  const base = defaultConfig();
  const daemons = addresses.map((address, i) => ({
    name: `d${i + 1}`,
    address,
    vid: 0x0a000001 + i,
    interfaces: [],
    segmentIndex: 0,
    configIndex: i,
  }));
  return {
    ...base,
    source: '<ring test>',
    segments: [{ port, addresses: ['127.255.255.255'], daemons }],
    daemons,
    hash,
    params: { ...base.params, ...params },
  };
}
