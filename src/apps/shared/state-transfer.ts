/**
 * The decisions of state transfer, free of I/O so they can be tested alone.
 *
 * After every regular view each member multicasts a HELLO saying whether its
 * state is in the group's line ("synced": it has been in the group without a
 * break since it last synced). When the view's last HELLO is delivered, every
 * member decides the same thing from the same ordered HELLOs:
 *
 * - no transfer when every member is synced and the view merged no partitions;
 * - otherwise the donor is the first synced HELLO's sender (or, when nobody is
 *   synced, the first HELLO's), and that delivery is the snapshot point: the
 *   donor serializes its state there, the others buffer the operations delivered
 *   after it, restore the snapshot when its last chunk arrives and replay them.
 *
 * A new view abandons a transfer in progress; the next view's HELLOs start over.
 */
export type TransferDecision =
  | { kind: 'wait' }
  | { kind: 'in-sync' }
  | { kind: 'send-snapshot' }
  | { kind: 'receive-snapshot'; donor: string };

interface Hello {
  sender: string;
  synced: boolean;
}

export class StateTransfer {
  /** This member's state is the group's (see above). */
  synced = false;
  #viewKey: string | null = null;
  #members = new Set<string>();
  #mergedPartitions = false;
  #hellos: Hello[] = [];
  #receiving = false;
  #buffered: Uint8Array[] = [];
  #chunks: Buffer[] = [];

  get viewKey(): string | null {
    return this.#viewKey;
  }

  get receiving(): boolean {
    return this.#receiving;
  }

  /** A regular view; returns the HELLO's synced flag to multicast. */
  onView(viewKey: string, members: readonly string[], mergedPartitions: boolean): boolean {
    this.#viewKey = viewKey;
    this.#members = new Set(members);
    this.#mergedPartitions = mergedPartitions;
    this.#hellos = [];
    this.#receiving = false;
    this.#buffered = [];
    this.#chunks = [];
    return this.synced;
  }

  /** The session to the daemon is gone: whatever it holds, this member's state may fall behind. */
  onDisconnect(): void {
    this.synced = false;
    this.#viewKey = null;
    this.#receiving = false;
    this.#buffered = [];
    this.#chunks = [];
  }

  onHello(viewKey: string, sender: string, synced: boolean, me: string): TransferDecision {
    if (viewKey !== this.#viewKey || !this.#members.has(sender) || this.#hellos.some((hello) => hello.sender === sender)) return { kind: 'wait' };
    this.#hellos.push({ sender, synced });
    if (this.#hellos.length < this.#members.size) return { kind: 'wait' };
    const everyoneSynced = this.#hellos.every((hello) => hello.synced);
    if (everyoneSynced && !this.#mergedPartitions) {
      this.synced = true;
      return { kind: 'in-sync' };
    }
    const donor = (this.#hellos.find((hello) => hello.synced) ?? this.#hellos[0]!).sender;
    if (donor === me) {
      this.synced = true;
      return this.#members.size === 1 ? { kind: 'in-sync' } : { kind: 'send-snapshot' };
    }
    this.#receiving = true;
    return { kind: 'receive-snapshot', donor };
  }

  /** An operation delivered in this view: kept for replay when it came after the snapshot point. */
  onOperation(operation: Uint8Array): void {
    if (this.#receiving) this.#buffered.push(operation);
  }

  /** A snapshot chunk; returns the snapshot and the operations to replay once the last one is in. */
  onSnapshotChunk(viewKey: string, index: number, count: number, bytes: Uint8Array): { snapshot: Buffer; replay: Uint8Array[] } | null {
    if (!this.#receiving || viewKey !== this.#viewKey || index !== this.#chunks.length) return null;
    this.#chunks.push(Buffer.from(bytes));
    if (this.#chunks.length < count) return null;
    const result = { snapshot: Buffer.concat(this.#chunks), replay: this.#buffered };
    this.#receiving = false;
    this.#buffered = [];
    this.#chunks = [];
    this.synced = true;
    return result;
  }
}
