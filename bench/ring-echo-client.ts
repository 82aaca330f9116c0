/**
 * The far end of a client round trip (Spread's spping): joins a group and sends every data
 * message it receives straight back to its sender's private group, with the same service.
 *
 *   node dist/bench/ring-echo-client.js <port> <socket dir> <private name> <group>
 *
 * Prints `ready` once its own join is seen; exits when stdin closes.
 */
import { connect } from '../src/client/index.js';

const [port, socketDir, privateName, group] = process.argv.slice(2);
const session = await connect({ daemon: port, unixSocketDir: socketDir, privateName });
session.on('message', (message) => {
  session.multicast(message.sender, message.data, { service: message.service });
});
session.on('membership', (message) => {
  if (message.group === group && message.members.includes(session.privateGroup)) console.log('ready');
});
session.join(group);
process.stdin.resume();
process.stdin.on('end', () => void session.disconnect().then(() => process.exit(0)));
