/**
 * A capture file (libpcap format, what `tcpdump -w` writes) read back: the UDP payloads in
 * it, for tests that replay captured traffic. Ethernet, Linux cooked (SLL, SLL2) link
 * types; IPv4 only.
 */

export interface UdpDatagram {
  source: string;
  destination: string;
  sourcePort: number;
  destinationPort: number;
  payload: Buffer;
}

/** Bytes before the IP header, per link type. */
const LINK_HEADER_BYTES: Record<number, number> = { 1: 14, 113: 16, 276: 20 };

export function udpDatagrams(file: Buffer): UdpDatagram[] {
  if (file.length < 24) return [];
  const magic = file.readUInt32LE(0);
  const littleEndian = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
  const u32 = (at: number) => (littleEndian ? file.readUInt32LE(at) : file.readUInt32BE(at));
  const linkHeader = LINK_HEADER_BYTES[u32(20)];
  if (linkHeader === undefined) throw new Error(`capture link type ${u32(20)} not understood`);
  const datagrams: UdpDatagram[] = [];
  for (let at = 24; at + 16 <= file.length; ) {
    const captured = u32(at + 8);
    const packet = file.subarray(at + 16, at + 16 + captured);
    at += 16 + captured;
    const ip = packet.subarray(linkHeader);
    if (ip.length < 20 || ip[0] >> 4 !== 4 || ip[9] !== 17) continue;
    const udp = ip.subarray((ip[0] & 0x0f) * 4);
    if (udp.length < 8) continue;
    datagrams.push({
      source: [...ip.subarray(12, 16)].join('.'),
      destination: [...ip.subarray(16, 20)].join('.'),
      sourcePort: udp.readUInt16BE(0),
      destinationPort: udp.readUInt16BE(2),
      // A GSO send captured before segmentation holds several datagrams: the caller splits them.
      payload: Buffer.from(udp.subarray(8)),
    });
  }
  return datagrams;
}
