/**
 * The replies a service keeps for retried calls, per client. A client says in
 * each call which of its calls it will never retry (`below`: every sequence
 * number under it was answered), so the cache holds little more than the calls
 * in flight, and snapshots stay small. A cap (oldest client's oldest reply
 * first) bounds it for clients that vanish. All of it is deterministic: every
 * replica changes it at the same points of the order.
 */
import type { Outcome } from './protocol.js';

export type CachedReply = [client: string, sequence: number, outcome: Outcome];

export class ReplyCache {
  readonly capacity: number;
  /** Insertion order of clients is the eviction order. */
  readonly #byClient = new Map<string, Map<number, Outcome>>();
  #size = 0;

  constructor(capacity: number) {
    this.capacity = capacity;
  }

  get size(): number {
    return this.#size;
  }

  get(client: string, sequence: number): Outcome | undefined {
    return this.#byClient.get(client)?.get(sequence);
  }

  set(client: string, sequence: number, outcome: Outcome): void {
    let replies = this.#byClient.get(client);
    if (replies === undefined) this.#byClient.set(client, (replies = new Map()));
    if (!replies.has(sequence)) this.#size += 1;
    replies.set(sequence, outcome);
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
    return [...this.#byClient].flatMap(([client, replies]) => [...replies].map(([sequence, outcome]): CachedReply => [client, sequence, outcome]));
  }

  restore(entries: CachedReply[]): void {
    this.#byClient.clear();
    this.#size = 0;
    for (const [client, sequence, outcome] of entries) this.set(client, sequence, outcome);
  }

  #evictOldest(): void {
    const [client, replies] = this.#byClient.entries().next().value!;
    replies.delete(replies.keys().next().value!);
    this.#size -= 1;
    if (replies.size === 0) this.#byClient.delete(client);
  }
}
