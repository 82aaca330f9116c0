/**
 * The replies a service keeps for retried calls, per client. A client says in
 * each call which of its calls it will never retry (`below`: every sequence
 * number under it was answered), so the cache holds little more than the calls
 * in flight, and snapshots stay small. A cap (oldest client's oldest reply
 * first) bounds it for clients that vanish. All of it is deterministic: every
 * replica changes it at the same points of the order.
 */
import type { Outcome } from './protocol.js';

/** `to`: where the caller listened when its call was executed. */
export type CachedReply = [client: string, sequence: number, outcome: Outcome, to: string];

export class ReplyCache {
  readonly capacity: number;
  /** Insertion order of clients is the eviction order. */
  readonly #byClient = new Map<string, Map<number, [Outcome, string]>>();
  #size = 0;

  constructor(capacity: number) {
    this.capacity = capacity;
  }

  get size(): number {
    return this.#size;
  }

  get(client: string, sequence: number): Outcome | undefined {
    return this.#byClient.get(client)?.get(sequence)?.[0];
  }

  set(client: string, sequence: number, outcome: Outcome, to: string): void {
    let replies = this.#byClient.get(client);
    if (replies === undefined) this.#byClient.set(client, (replies = new Map()));
    if (!replies.has(sequence)) this.#size += 1;
    replies.set(sequence, [outcome, to]);
    while (this.#size > this.capacity) this.#evictOldest();
  }

  /** Drops the client's replies numbered under `below`: it will not ask for them again. */
  forget(client: string, below: number): void {
    const replies = this.#byClient.get(client);
    if (replies === undefined) return;
    for (const sequence of replies.keys()) {
      if (sequence >= below) continue;
      replies.delete(sequence);
      this.#size -= 1;
    }
    if (replies.size === 0) this.#byClient.delete(client);
  }

  entries(): CachedReply[] {
    return [...this.#byClient].flatMap(([client, replies]) => [...replies].map(([sequence, [outcome, to]]): CachedReply => [client, sequence, outcome, to]));
  }

  restore(entries: CachedReply[]): void {
    this.#byClient.clear();
    this.#size = 0;
    for (const [client, sequence, outcome, to] of entries) this.set(client, sequence, outcome, to);
  }

  #evictOldest(): void {
    const [client, replies] = this.#byClient.entries().next().value!;
    replies.delete(replies.keys().next().value!);
    this.#size -= 1;
    if (replies.size === 0) this.#byClient.delete(client);
  }
}
