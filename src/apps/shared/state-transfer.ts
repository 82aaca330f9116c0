/**
 * The decisions of state transfer, free of I/O so they can be tested alone.
 *
 * After every regular view each member multicasts a HELLO with its standing:
 * 0 = its state is not the group's (new, or back after its daemon was away),
 * 1 = it declared its own state the group's because it was alone,
 * 2 = its state was agreed with other members and has been since.
 * When the view's last HELLO is delivered, every member decides the same thing
 * from the same ordered HELLOs:
 *
 * - alone: nothing to transfer, standing at least 1;
 * - everyone at 2 and no partitions merged: nothing to transfer;
 * - otherwise the donor is the first HELLO's sender among the highest standing,
 *   and that delivery is the snapshot point: the donor serializes its state
 *   there, the others buffer the operations delivered after it, restore the
 *   snapshot when its last chunk arrives and replay them. All end at 2.
 *
 * So a cache whose daemon restarted, alone for a moment before its ring merges
 * back, cannot overwrite the group's newer state with what it held.
 * A new view abandons a transfer in progress; the next view's HELLOs start over.
 */
export type Standing = 0 | 1 | 2;

export type TransferDecision =
  | { kind: 'wait' }
  | { kind: 'in-sync' }
  | { kind: 'send-snapshot' }
  | { kind: 'receive-snapshot'; donor: string };

interface Hello {
  sender: string;
  standing: Standing;
}

export class StateTransfer {
  /** See above. */
  standing: Standing = 0;
  #viewKey: string | null = null;
  #members = new Set<string>();
  #mergedPartitions = false;
  #hellos: Hello[] = [];
  #receiving = false;
  /** Every HELLO of the current view is in: the transfer decision is made. */
  #decided = false;
  #buffered: Uint8Array[] = [];
  #chunks: Buffer[] = [];

  /** This member's state is the group's, or the only one there is. */
  get synced(): boolean {
    return this.standing > 0;
  }

  get viewKey(): string | null {
    return this.#viewKey;
  }

  get receiving(): boolean {
    return this.#receiving;
  }

  /**
   * The current view's transfer is decided. Before that, after a merge, each side still holds
   * its own state and may take itself for the group: a member that acts on the state waits.
   */
  get decided(): boolean {
    return this.#decided;
  }

  /** A regular view; returns the standing to multicast in the HELLO. */
  onView(viewKey: string, members: readonly string[], mergedPartitions: boolean): Standing {
    // A transfer cut short by this view: what this member holds is not the group's state.
    if (this.#receiving) this.standing = 0;
    this.#viewKey = viewKey;
    this.#members = new Set(members);
    this.#mergedPartitions = mergedPartitions;
    this.#hellos = [];
    this.#receiving = false;
    this.#decided = false;
    this.#buffered = [];
    this.#chunks = [];
    return this.standing;
  }

  /** The session to the daemon is gone: whatever it holds, this member's state may fall behind. */
  onDisconnect(): void {
    this.standing = 0;
    this.#viewKey = null;
    this.#receiving = false;
    this.#decided = false;
    this.#buffered = [];
    this.#chunks = [];
  }

  onHello(viewKey: string, sender: string, standing: Standing, me: string): TransferDecision {
    if (viewKey !== this.#viewKey || !this.#members.has(sender) || this.#hellos.some((hello) => hello.sender === sender)) return { kind: 'wait' };
    this.#hellos.push({ sender, standing });
    if (this.#hellos.length < this.#members.size) return { kind: 'wait' };
    this.#decided = true;
    if (this.#members.size === 1) {
      this.standing = Math.max(this.standing, 1) as Standing;
      return { kind: 'in-sync' };
    }
    if (this.#hellos.every((hello) => hello.standing === 2) && !this.#mergedPartitions) return { kind: 'in-sync' };
    const highest = Math.max(...this.#hellos.map((hello) => hello.standing));
    const donor = this.#hellos.find((hello) => hello.standing === highest)!.sender;
    if (donor === me) {
      this.standing = 2;
      return { kind: 'send-snapshot' };
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
    this.standing = 2;
    return result;
  }
}
