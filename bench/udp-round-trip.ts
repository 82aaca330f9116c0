/**
 * The floor under every ring hop: a bare UDP round trip between two Node processes.
 *
 *   node dist/bench/udp-round-trip.js echo <address>                 prints the bound port, echoes every datagram
 *   node dist/bench/udp-round-trip.js ping <address> <echo address> <port> <pings> <bytes>
 *                                                                    prints {p50, p99, mean} in µs as JSON
 *
 * Separate processes so that each side can run in its own network namespace.
 */
import dgram from 'node:dgram';
import { timeRoundTrips } from './ring-measure.js';

const [mode, address, ...rest] = process.argv.slice(2);
const socket = dgram.createSocket('udp4');

if (mode === 'echo') {
  socket.on('message', (bytes, from) => socket.send(bytes, from.port, from.address));
  socket.bind(0, address, () => console.log(socket.address().port));
} else if (mode === 'ping') {
  const [echoAddress, port, pings, bytes] = rest;
  socket.bind(0, address, () => {
    const payload = Buffer.alloc(Number(bytes));
    void timeRoundTrips(Number(pings), () => {
      const back = new Promise<void>((resolve) => socket.once('message', () => resolve()));
      socket.send(payload, Number(port), echoAddress);
      return back;
    }).then((result) => {
      console.log(JSON.stringify(result));
      socket.close();
    });
  });
} else {
  console.error('usage: udp-round-trip.js echo <address> | ping <address> <echo address> <port> <pings> <bytes>');
  process.exit(2);
}
