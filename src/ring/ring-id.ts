/**
 * Ring ids: (leader VID, time), the first two words of every group id clients see (§5.2).
 * Kept apart because their uniqueness is a promise across the daemon's lives, not only
 * within one TotemRing: the adapter has to help keep it.
 *
 * The time is the leader's clock in seconds, raised above every ring id the new ring's
 * members report (JOINs carry each member's ring) and above the last one this daemon
 * formed, so it strictly increases at every daemon. It stays a positive int32 (clients
 * read it as one; the group layer sets bit 31 for transitional ids) until 2038.
 *
 * Only the leader forms ids with its VID, so uniqueness is each daemon's own business,
 * and the one thing a daemon cannot know after a restart is how far its previous life's
 * times ran ahead of the clock (memberships faster than one a second, or members with
 * clocks ahead of ours), nor, within the same second, which time it used last. So the
 * adapter keeps the highest time this daemon formed (`Ring.formedRingTime()`) durable
 * before any effect leaves the process, and passes it back on start as
 * `TotemOptions.ringTimeFloor`: every id a new life forms lies above all its earlier
 * lives' ids, whatever the clock says. Two daemons restarting together each start
 * above their own earlier ids, which is all they need, since their VIDs differ.
 */
import type { MembershipId } from './types.js';

/** Ring id of a daemon that has not installed a ring yet. */
export const NO_RING: MembershipId = Object.freeze({ procId: 0, time: 0 });

/** The time of a ring id formed now by a daemon whose ids so far (this life's and earlier ones') go up to `formedTime`. */
export function ringTimeAfter(nowMs: number, formedTime: number): number {
  return Math.max(Math.floor(nowMs / 1000), formedTime + 1);
}

export function ringKey(id: MembershipId): string {
  return `${id.procId}/${id.time}`;
}

export function sameRing(a: MembershipId, b: MembershipId): boolean {
  return a.procId === b.procId && a.time === b.time;
}
