/**
 * Dynamic linear voting: a component may become the primary when it holds a majority of the
 * last primary's members, or exactly half including the first of them in name order. Every
 * attempt to install a newer primary that some member cannot rule out (it sent its CPC but
 * never learned the outcome) must be outvoted the same way, so two primaries never coexist
 * (Yeger Lotem, Keidar and Dolev's treatment of ambiguous attempts).
 *
 * A vote counts only from a member that can vouch for the primary's green actions: one that stayed
 * connected since (SAFE delivery gave it every action any member ordered there). A replica whose
 * process or daemon session restarted may have lost actions it never read, so it counts only when
 * every member of that primary is present (then their logs together hold every green action).
 */
export interface PrimaryRecord {
  /** Installed primaries are numbered 1, 2, 3…; 0 = the configured initial set. */
  index: number;
  members: string[];
}

export function holdsQuorumOf(previous: readonly string[], present: ReadonlySet<string>): boolean {
  if (previous.length === 0) return true;
  let count = 0;
  for (const name of previous) if (present.has(name)) count++;
  if (2 * count > previous.length) return true;
  const first = [...previous].sort()[0]!;
  return 2 * count === previous.length && present.has(first);
}

/**
 * Whether the component `present` may install a primary, given every member's last primary and
 * unresolved attempts. With no history at all (a fresh group with no configured replica set)
 * the component bootstraps the first primary.
 */
export function isPrimaryQuorum(
  present: ReadonlySet<string>,
  informed: ReadonlySet<string>,
  lastPrimaries: readonly (PrimaryRecord | null)[],
  attempts: readonly PrimaryRecord[],
): boolean {
  const voters = (record: PrimaryRecord) => (record.index === 0 || record.members.every((name) => present.has(name)) ? present : informed);
  const last = newestPrimary(lastPrimaries);
  if (last !== null && !holdsQuorumOf(last.members, voters(last))) return false;
  const lastIndex = last?.index ?? -1;
  return attempts.every((attempt) => attempt.index <= lastIndex || holdsQuorumOf(attempt.members, voters(attempt)));
}

export function newestPrimary(records: readonly (PrimaryRecord | null)[]): PrimaryRecord | null {
  let newest: PrimaryRecord | null = null;
  for (const record of records) if (record !== null && (newest === null || record.index > newest.index)) newest = record;
  return newest;
}
