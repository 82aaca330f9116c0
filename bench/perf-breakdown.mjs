// Splits a daemon's CPU samples by what they were doing, from `perf script` output of a
// `perf record -g` taken with the daemons run under `node --perf-basic-prof`:
//   perf script -i perf.data | node bench/perf-breakdown.mjs [pid,pid,...] [--detail N]
// Each sample goes to the first rule its stack matches (kernel work by the syscall it serves;
// user work by the innermost frame that names a layer). Prints per process: share, ms.
import { createInterface } from 'node:readline';

const pids = process.argv.slice(2).find((arg) => /^\d+(,\d+)*$/.test(arg));
const wanted = pids ? new Set(pids.split(',')) : null;
const detailAt = process.argv.indexOf('--detail');
/** With --detail N: the N commonest innermost frames of each category, per process. */
const detail = detailAt >= 0 ? Number(process.argv[detailAt + 1]) : 0;

/** [category, test on the whole stack text]; kernel rules come first (a syscall's cost is the syscall's). */
const KERNEL_RULES = [
  ['kernel: receive path run for peers (softirq inside a send)', (s) => /net_rx_action|process_backlog/.test(s) && /sendmsg|sendmmsg/.test(s)],
  ['kernel: UDP send', (s) => /udp_sendmsg|__sys_sendmsg|__sys_sendmmsg/.test(s)],
  ['kernel: UDP receive', (s) => /udp_recvmsg|__sys_recvmsg|__sys_recvmmsg/.test(s)],
  ['kernel: client socket writes', (s) => /unix_stream_sendmsg|do_writev|ksys_write|tcp_sendmsg/.test(s)],
  ['kernel: client socket reads', (s) => /unix_stream_recvmsg|ksys_read|tcp_recvmsg/.test(s)],
  ['kernel: epoll', (s) => /do_epoll_wait|ep_poll/.test(s)],
  ['kernel: other (faults, timers, interrupts)', () => true],
];
/** Tested frame by frame from the innermost: the first frame that names a layer decides. */
const FRAME_RULES = [
  ['GC', /v8::internal::(Heap|Scavenger|MarkCompact|MinorMarkCompact|ConcurrentMarking|Sweeper)|ScavengerCollector/],
  ['UDP in Node (dgram, libuv)', /node:dgram|UDPWrap|uv__udp|uv_udp/],
  ['client sockets in Node (streams, libuv)', /stream_base_commons|node:net|streams\/(writable|readable)|LibuvStreamWrap|StreamBase|uv__write|uv__read|uv_try_write/],
  ['packet encode/decode', /\/ring\/packet\.js/],
  ['ring logic', /\/ring\/(totem|buffer|seq|limits|assert)\.js/],
  ['group layer', /\/groups\//],
  ['daemon: sessions and client protocol', /\/protocol\/|\/daemon\/(node|server|session-output|validate|handshake)\.js/],
  ['UDP link (tspread)', /\/daemon\/udp\.js/],
  ['event loop', /uv__io_poll|uv_run|epoll_wait/],
];

const counts = new Map(); // pid → Map(category → samples)
const leaves = new Map(); // pid → Map(category → Map(innermost frame → samples))
let current = null;

function finish() {
  if (current === null) return;
  const { pid, frames } = current;
  current = null;
  if (wanted !== null && !wanted.has(pid)) return;
  const stack = frames.join('\n');
  let category = 'other user (V8, Node runtime)';
  if (frames.some((frame) => frame.includes('[kernel.kallsyms]'))) {
    category = KERNEL_RULES.find(([, test]) => test(stack))[0];
  } else {
    outer: for (const frame of frames) {
      for (const [name, pattern] of FRAME_RULES) {
        if (pattern.test(frame)) {
          category = name;
          break outer;
        }
      }
    }
  }
  const byCategory = counts.get(pid) ?? new Map();
  byCategory.set(category, (byCategory.get(category) ?? 0) + 1);
  counts.set(pid, byCategory);
  if (detail > 0) {
    const leaf = (frames[0] ?? '?').replace(/^[0-9a-f]+ /, '').replace(/\+0x[0-9a-f]+ .*$/, '');
    const byLeaf = leaves.get(pid) ?? new Map();
    const inCategory = byLeaf.get(category) ?? new Map();
    inCategory.set(leaf, (inCategory.get(leaf) ?? 0) + 1);
    byLeaf.set(category, inCategory);
    leaves.set(pid, byLeaf);
  }
}

const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  if (line.length === 0) return finish();
  if (!line.startsWith('\t') && !line.startsWith(' ')) {
    finish();
    const match = /^\S+\s+(\d+)/.exec(line);
    current = { pid: match ? match[1] : '?', frames: [] };
  } else if (current !== null) {
    current.frames.push(line.trim());
  }
});
lines.on('close', () => {
  finish();
  for (const [pid, byCategory] of counts) {
    const total = [...byCategory.values()].reduce((a, b) => a + b, 0);
    console.log(`pid ${pid}: ${total} samples`);
    for (const [category, n] of [...byCategory].sort((a, b) => b[1] - a[1])) {
      console.log(`  ${((100 * n) / total).toFixed(1).padStart(5)}%  ${category}`);
      const top = [...(leaves.get(pid)?.get(category) ?? new Map())].sort((a, b) => b[1] - a[1]).slice(0, detail);
      for (const [leaf, m] of top) console.log(`          ${((100 * m) / total).toFixed(1).padStart(5)}%  ${leaf}`);
    }
  }
});
