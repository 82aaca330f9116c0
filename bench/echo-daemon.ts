/**
 * A loop-back "daemon" that measures the client alone: it answers the
 * handshake (spread-protocol.md §2.8) and then echoes every byte. A data
 * request has exactly the layout of its delivery, so a flooder sees its own
 * messages at once; echoed join/kill requests carry types a client ignores.
 *
 *   node dist/bench/echo-daemon.js <unix-socket-path | tcp-port>
 */
import * as fs from 'node:fs';
import * as net from 'node:net';

const where = process.argv[2] ?? '/tmp/24980';
const server = net.createServer((socket) => {
  let buffered = Buffer.alloc(0);
  let stage: 'request' | 'choice' = 'request';
  let name = '';
  const onData = (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk]);
    if (stage === 'request' && buffered.length >= 5 && buffered.length >= 5 + buffered[4]) {
      name = buffered.subarray(5, 5 + buffered[4]).toString('latin1') || 'echo';
      buffered = buffered.subarray(5 + buffered[4]);
      socket.write(Buffer.from('\x05NULL ', 'latin1'));
      stage = 'choice';
    }
    if (stage === 'choice' && buffered.length >= 90) {
      const group = `#${name}#echo`;
      socket.write(Buffer.concat([Buffer.from([1, 5, 0, 1, group.length]), Buffer.from(group, 'latin1')]));
      socket.off('data', onData);
      const rest = buffered.subarray(90);
      if (rest.length > 0) socket.write(rest);
      socket.pipe(socket);
    }
  };
  socket.on('data', onData);
  socket.on('error', () => undefined);
});
if (/^\d+$/.test(where)) server.listen(Number(where), '127.0.0.1');
else {
  fs.rmSync(where, { force: true });
  server.listen(where);
}
console.log(`echo daemon listening on ${where}`);
