// Builds the optional native addons (udp_batch.c, ring_seal.c) with node-gyp during `npm ci` / `npm install`.
// Never fails the install: without them the daemon sends one datagram per call and seals ring
// datagrams through node:crypto, and says so.
import { spawnSync } from 'node:child_process';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

if (process.env.TSPREAD_SKIP_NATIVE === '1') process.exit(0);
const here = dirname(fileURLToPath(import.meta.url));
// npm hands scripts its own node-gyp (and puts a node-gyp shim on PATH).
const bundled = process.env.npm_config_node_gyp;
const [command, args] = bundled ? [process.execPath, [bundled, 'rebuild']] : ['node-gyp', ['rebuild']];
const result = spawnSync(command, args, { cwd: here, stdio: 'inherit' });
if (result.status !== 0) {
  const why = result.error ? result.error.message : `node-gyp exited ${result.status}`;
  console.warn(`tspread: the optional native addons for batched UDP and ring sealing (native/) were not built (${why}).`);
  console.warn('tspread: the daemon works without them, one datagram per send and sealing through node:crypto; it logs "ring UDP batching off".');
}
