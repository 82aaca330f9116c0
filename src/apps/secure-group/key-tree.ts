/**
 * The shape of a view's key tree: a balanced binary tree whose leaves are the
 * view's participants in the view's order, so every member builds the same tree
 * from the same roster without exchanging it. A node is the range [lo, hi) of
 * leaves under it; its name hashes the members in that range, so two members
 * with different rosters never mix each other's blinded keys.
 */
import { createHash } from 'node:crypto';

export interface TreeNode {
  lo: number;
  hi: number;
}

/** The left and right children of an internal node: the left one takes the larger half. */
export function children(node: TreeNode): [TreeNode, TreeNode] {
  const middle = node.lo + Math.ceil((node.hi - node.lo) / 2);
  return [
    { lo: node.lo, hi: middle },
    { lo: middle, hi: node.hi },
  ];
}

/**
 * The path from leaf `index` up to the root (leaf first) and, beside each step
 * below the root, the sibling whose blinded key that step needs (its co-path).
 */
export function pathOf(index: number, leafCount: number): { path: TreeNode[]; coPath: TreeNode[] } {
  const downward: TreeNode[] = [];
  const siblings: TreeNode[] = [];
  let node: TreeNode = { lo: 0, hi: leafCount };
  for (let depth = 0; depth <= leafCount; depth++) {
    downward.push(node);
    if (node.hi - node.lo === 1) break;
    const [left, right] = children(node);
    const mine = index < left.hi ? left : right;
    siblings.push(mine === left ? right : left);
    node = mine;
  }
  return { path: downward.reverse(), coPath: siblings.reverse() };
}

/** TGDH's sponsor of a subtree: the member that broadcasts its blinded key (here its leftmost leaf). */
export function sponsorOf(node: TreeNode): number {
  return node.lo;
}

/** A node's name: a hash of the members under it. */
export function nodeName(participants: readonly string[], node: TreeNode): string {
  const hash = createHash('sha256');
  for (let index = node.lo; index < node.hi; index++) hash.update(participants[index]).update('\0');
  return hash.digest('hex').slice(0, 32);
}
