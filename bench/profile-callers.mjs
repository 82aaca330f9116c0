// Lists the callers (parent frames) of a function in a .cpuprofile by self time. Usage: node bench/profile-callers.mjs file name
import { readFileSync } from 'node:fs';
const [file, name] = process.argv.slice(2);
const profile = JSON.parse(readFileSync(file, 'utf8'));
const parent = new Map();
for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node);
const byId = new Map(profile.nodes.map((node) => [node.id, node]));
const counts = new Map();
profile.samples.forEach((id) => {
  const node = byId.get(id);
  if (node.callFrame.functionName !== name) return;
  const chain = [];
  for (let p = parent.get(node.id); p && chain.length < 6; p = parent.get(p.id)) chain.push(`${p.callFrame.functionName}:${p.callFrame.lineNumber + 1}`);
  const key = chain.join(' < ');
  counts.set(key, (counts.get(key) ?? 0) + 1);
});
for (const [key, n] of [...counts.entries()].sort((a, b) => b[1] - a[1]).slice(0, 8)) console.log(n, key);
