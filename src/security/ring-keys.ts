/**
 * The ring key file that spread.conf's `RingKeyFile` names. Pure: the daemon reads the
 * file; this module parses it.
 *
 * One key per line, `#` starts a comment:
 *   current <id> <64 hex digits>    the key this daemon seals with (exactly one)
 *   next <id> <64 hex digits>       accepted, not used for sealing (the key rolled to next)
 *   previous <id> <64 hex digits>   accepted, not used for sealing (the key rolled from)
 * Ids are 0..255 and name the key on the wire, so a receiver picks the right one without
 * trying them all. A rollover is three reloads (docs/security.md): add `next`, swap, drop.
 */

export const RING_KEY_BYTES = 32;
const KEY_ROLES = ['current', 'next', 'previous'] as const;
export type RingKeyRole = (typeof KEY_ROLES)[number];

export interface RingKey {
  id: number;
  role: RingKeyRole;
  key: Buffer;
}

export interface RingKeySet {
  /** The key datagrams are sealed with. */
  sealing: RingKey;
  /** Every accepted key (sealing included) by id. */
  accepted: Map<number, RingKey>;
}

export class RingKeyFileError extends Error {}

export function parseRingKeys(text: string, source: string): RingKeySet {
  const accepted = new Map<number, RingKey>();
  let sealing: RingKey | null = null;
  const lines = text.split('\n');
  for (let index = 0; index < lines.length; index++) {
    const line = lines[index].replace(/#.*$/, '').trim();
    if (line === '') continue;
    const where = `${source}:${index + 1}`;
    const [role, idText, hex, ...extra] = line.split(/\s+/);
    if (!(KEY_ROLES as readonly string[]).includes(role) || idText === undefined || hex === undefined || extra.length > 0) {
      throw new RingKeyFileError(`${where}: expected 'current|next|previous <id> <${RING_KEY_BYTES * 2} hex digits>'`);
    }
    const id = Number(idText);
    if (!/^\d{1,3}$/.test(idText) || id > 255) throw new RingKeyFileError(`${where}: key id must be 0..255`);
    if (!new RegExp(`^[0-9a-fA-F]{${RING_KEY_BYTES * 2}}$`).test(hex)) {
      throw new RingKeyFileError(`${where}: a key is ${RING_KEY_BYTES * 2} hex digits (${RING_KEY_BYTES} random bytes)`);
    }
    if (accepted.has(id)) throw new RingKeyFileError(`${where}: key id ${id} given twice`);
    const key: RingKey = { id, role: role as RingKeyRole, key: Buffer.from(hex, 'hex') };
    if (key.role === 'current') {
      if (sealing !== null) throw new RingKeyFileError(`${where}: more than one 'current' key`);
      sealing = key;
    }
    accepted.set(id, key);
  }
  if (sealing === null) throw new RingKeyFileError(`${source}: no 'current' key`);
  return { sealing, accepted };
}
