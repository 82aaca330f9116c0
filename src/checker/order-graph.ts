/**
 * Consistency of per-client orders: given, for each client, the sequence in
 * which it saw a set of items (messages or views), decide whether one global
 * order agrees with all of them, and if not, name a witness.
 *
 * Each client's sequence adds edges between consecutive items; the orders are
 * consistent exactly when this graph has no cycle. Strongly connected
 * components (Tarjan, iterative: no recursion, no stack limit) locate the
 * conflicts; inside one component a witness is searched for as a pair of
 * clients that see two items in opposite orders. If no pair does (a cycle
 * spread over three or more clients), the cycle itself is the witness.
 * Cost: O(items + total sequence length), plus the witness search, which is
 * linear in the sizes of the offending components only.
 */

export interface OrderSequence {
  /** Who saw this sequence (reported back in conflicts). */
  client: string;
  /** Item numbers in [0, itemCount), in the order the client saw them. */
  items: readonly number[];
}

export type OrderConflict =
  | {
      kind: 'inversion';
      /** `firstClient` saw `a` before `b`; `secondClient` saw `b` before `a`. */
      a: number;
      b: number;
      firstClient: string;
      secondClient: string;
    }
  | { kind: 'cycle'; items: number[]; clients: string[] };

/** Per component, at most how many clients are tried as the reference order. */
const WITNESS_REFERENCES_MAX = 8;
/** At most how many items of a cycle are listed. */
const CYCLE_ITEMS_LISTED_MAX = 12;

export function findOrderConflicts(sequences: readonly OrderSequence[], itemCount: number): OrderConflict[] {
  const successors: number[][] = Array.from({ length: itemCount }, () => []);
  for (const sequence of sequences) {
    for (let position = 1; position < sequence.items.length; position++) {
      const from = sequence.items[position - 1];
      const to = sequence.items[position];
      if (from !== to) successors[from].push(to);
    }
  }
  const components = stronglyConnectedComponents(successors);
  const conflicts: OrderConflict[] = [];
  for (const component of components) {
    if (component.length < 2) continue;
    conflicts.push(witness(component, sequences));
  }
  return conflicts;
}

function witness(component: number[], sequences: readonly OrderSequence[]): OrderConflict {
  const inComponent = new Set(component);
  const restricted: { client: string; items: number[] }[] = [];
  for (const sequence of sequences) {
    const items = sequence.items.filter((item) => inComponent.has(item));
    if (items.length >= 2) restricted.push({ client: sequence.client, items });
  }
  const references = Math.min(restricted.length, WITNESS_REFERENCES_MAX);
  for (let r = 0; r < references; r++) {
    const reference = restricted[r];
    const position = new Map<number, number>();
    reference.items.forEach((item, index) => {
      if (!position.has(item)) position.set(item, index);
    });
    for (let c = 0; c < restricted.length; c++) {
      if (c === r) continue;
      let maxPosition = -1;
      let maxItem = -1;
      for (const item of restricted[c].items) {
        const itemPosition = position.get(item);
        if (itemPosition === undefined) continue;
        if (itemPosition < maxPosition) {
          // client c saw maxItem before item; the reference saw item first.
          return { kind: 'inversion', a: maxItem, b: item, firstClient: restricted[c].client, secondClient: reference.client };
        }
        maxPosition = itemPosition;
        maxItem = item;
      }
    }
  }
  return {
    kind: 'cycle',
    items: component.slice(0, CYCLE_ITEMS_LISTED_MAX),
    clients: restricted.map((sequence) => sequence.client),
  };
}

/** Tarjan's algorithm without recursion. Returns the components. */
function stronglyConnectedComponents(successors: readonly number[][]): number[][] {
  const count = successors.length;
  const index = new Int32Array(count).fill(-1);
  const lowLink = new Int32Array(count);
  const onStack = new Uint8Array(count);
  const stack: number[] = [];
  const components: number[][] = [];
  let nextIndex = 0;
  // Explicit DFS frames: node and the position of the next successor to visit.
  const frameNode: number[] = [];
  const frameEdge: number[] = [];
  for (let root = 0; root < count; root++) {
    if (index[root] !== -1) continue;
    frameNode.push(root);
    frameEdge.push(0);
    index[root] = lowLink[root] = nextIndex++;
    stack.push(root);
    onStack[root] = 1;
    while (frameNode.length > 0) {
      const top = frameNode.length - 1;
      const node = frameNode[top];
      const edges = successors[node];
      if (frameEdge[top] < edges.length) {
        const next = edges[frameEdge[top]++];
        if (index[next] === -1) {
          index[next] = lowLink[next] = nextIndex++;
          stack.push(next);
          onStack[next] = 1;
          frameNode.push(next);
          frameEdge.push(0);
        } else if (onStack[next] === 1) {
          lowLink[node] = Math.min(lowLink[node], index[next]);
        }
        continue;
      }
      frameNode.pop();
      frameEdge.pop();
      if (frameNode.length > 0) {
        const parent = frameNode[frameNode.length - 1];
        lowLink[parent] = Math.min(lowLink[parent], lowLink[node]);
      }
      if (lowLink[node] === index[node]) {
        const component: number[] = [];
        let member: number;
        do {
          member = stack.pop() as number;
          onStack[member] = 0;
          component.push(member);
        } while (member !== node);
        components.push(component);
      }
    }
  }
  return components;
}
