/**
 * Which component of a partitioned service may execute and acknowledge calls: only the
 * primary one, so no side of a partition acknowledges a call the merge would drop.
 *
 * Dynamic linear voting (holdsQuorumOf, shared with the replication engine): a regular view
 * is primary when it holds a strict majority of the last primary's members, or exactly half
 * including the first of them in name order. A view that changed because members left or
 * crashed inside this component (cause join/leave/disconnect, no network event) stays primary:
 * those members are gone, not on another side. Each primary becomes the next one's reference.
 *
 * Between the transitional signal and the next regular view, messages may not have reached
 * every member of the old view: they are applied (every member that gets them applies them
 * alike) but not acknowledged; a caller's retry then finds the cached reply.
 *
 * Pure: every member of a component sees the same views, so every member decides alike.
 */
import type { MembershipCause } from '../../client/index.js';
import { holdsQuorumOf } from '../replication/voting.js';

export interface PrimarySnapshot {
  members: string[];
  primary: boolean;
}

export class PrimaryComponent {
  /** The last primary view this member knows of ([] = none yet: the first component bootstraps). */
  #lastPrimary: string[] = [];
  /** The latest regular view was primary. */
  #primaryView = false;
  #transitional = false;

  /** Calls may be executed and acknowledged here now. */
  get acknowledges(): boolean {
    return this.#primaryView && !this.#transitional;
  }

  /** Whether this member's latest regular view was primary (its state should win a merge). */
  get primaryView(): boolean {
    return this.#primaryView;
  }

  /** Messages are still applied (not refused) here: in a primary view, or in the transitional window after one. */
  get applies(): boolean {
    return this.#primaryView;
  }

  get lastPrimary(): readonly string[] {
    return this.#lastPrimary;
  }

  onView(members: readonly string[], cause: MembershipCause): boolean {
    const stayed = this.#primaryView && !this.#transitional && cause !== 'network';
    this.#transitional = false;
    this.#primaryView = stayed || holdsQuorumOf(this.#lastPrimary, new Set(members));
    if (this.#primaryView) this.#lastPrimary = [...members];
    return this.#primaryView;
  }

  onTransitional(): void {
    this.#transitional = true;
  }

  /** The daemon session is lost: the next view (maybe of a daemon cut off from the rest) must win a vote again. */
  onDisconnect(): void {
    this.#primaryView = false;
    this.#transitional = false;
  }

  snapshot(): PrimarySnapshot {
    return { members: this.#lastPrimary, primary: this.#primaryView };
  }

  restore(snapshot: PrimarySnapshot | undefined): void {
    if (snapshot === undefined) return;
    this.#lastPrimary = [...snapshot.members];
    this.#primaryView = snapshot.primary;
    this.#transitional = false;
  }
}
