/**
 * The reference's observed little-endian deliveries (spread-protocol.md §3.4, §5.3), byte for
 * byte: what a client must parse, and what the daemon's group layer must produce.
 */
import { hex, name32 } from './fake-daemon.js';

export const observed = {
  // §3.4: alice sent AGREED, mess_type 0x1234, "hi" to grp1.
  data: Buffer.concat([
    hex('90 00 00 80'),
    name32('#alice#localhost'),
    hex('01 00 00 00 80 34 12 80 02 00 00 00'),
    name32('grp1'),
    hex('68 69'),
  ]),
  // §5.3: lightweight join of bob to grp1 (gid index 2), receiver alice.
  join: Buffer.concat([
    hex('80 11 00 80'),
    name32('grp1'),
    hex('02 00 00 00 80 00 00 80 38 00 00 00'),
    name32('#alice#localhost'),
    name32('#bob#localhost'),
    hex('26 97 c5 1c 5d 92 09 6b 02 00 00 00 | 01 00 00 00 | 00 00 00 00 | 01 00 00 00'.replace(/\|/g, '')),
    name32('#bob#localhost'),
  ]),
  // §5.3: observed merge, receiver al2 (local set at 20 + 0x44).
  merge: Buffer.concat([
    hex('80 18 00 80'),
    name32('K'),
    hex('03 00 00 00 80 00 00 80 7c 00 00 00'),
    name32('#al2#d1'),
    name32('#bo2#d2'),
    name32('#cy2#d2'),
    hex('ef 7a 8d 5c 3e 93 09 6b 01 00 00 00 02 00 00 00 44 00 00 00 02 00 00 00'),
    name32('#bo2#d2'),
    name32('#cy2#d2'),
    hex('01 00 00 00'),
    name32('#al2#d1'),
  ]),
};
