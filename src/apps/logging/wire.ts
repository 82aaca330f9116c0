/**
 * How log lines travel between log-send and the collectors.
 *
 * A message carries whole lines, each ending in '\n' (a line never contains one),
 * so a collector splits without parsing. Two kinds:
 * - plain (any messType but SEQUENCED): lines only, as Spread's mod_log_spread and
 *   the accessLog middleware send them; a missing final '\n' is added.
 * - SEQUENCED: a first line `<senderId> <batchSeq>` and then the lines. A sender
 *   re-sends unconfirmed batches after a reconnect with the same id and seq, and a
 *   collector writes a batch only when its seq is above the last one seen from that
 *   id, so a re-sent batch the collector already has is not written twice.
 *
 * Presence: collectors also join `<group>:logd` (and never send to it), so a sender
 * that joins it too sees in its views whether a collector is there to receive.
 * Collectors' private names start with COLLECTOR_NAME_PREFIX to tell them apart.
 */
export const SEQUENCED_MESS_TYPE = 0x4c47; // "LG"
/** A sender's note to its own private group: every batch up to this seq is ordered. */
export const CONFIRM_MESS_TYPE = 0x4c43; // "LC"
/** Payload bytes per message: well below Spread's 143 152-byte limit. */
export const BATCH_BYTES_MAX = 100_000;
/** Longer lines are truncated to this many bytes and end with a truncation marker. */
export const LINE_BYTES_MAX = 65_536;
export const COLLECTOR_NAME_PREFIX = 'logd';
const PRESENCE_SUFFIX = ':logd';
const GROUP_NAME_LENGTH_MAX = 31;

/** The presence group of a log group; throws when the name would be too long for Spread. */
export function presenceGroup(group: string): string {
  const name = group + PRESENCE_SUFFIX;
  if (name.length > GROUP_NAME_LENGTH_MAX) {
    throw new RangeError(`log group ${JSON.stringify(group)} is too long: at most ${GROUP_NAME_LENGTH_MAX - PRESENCE_SUFFIX.length} characters`);
  }
  return name;
}

/** True when a member (`#name#daemon`) is a collector's session. */
export function isCollectorMember(member: string): boolean {
  return member.startsWith('#' + COLLECTOR_NAME_PREFIX);
}

/** A private name for a collector session: the prefix and random letters (10 characters). */
export function collectorPrivateName(): string {
  return COLLECTOR_NAME_PREFIX + randomLetters(10 - COLLECTOR_NAME_PREFIX.length);
}

export function randomLetters(count: number): string {
  let text = '';
  for (let index = 0; index < count; index++) text += String.fromCharCode(97 + Math.floor(Math.random() * 26));
  return text;
}

/** The first line of a SEQUENCED batch. */
export function batchHeader(senderId: string, seq: number): Buffer {
  return Buffer.from(`${senderId} ${seq}\n`, 'latin1');
}

/** Header and lines of a SEQUENCED batch, or null when the header is malformed. */
export function parseSequencedBatch(data: Uint8Array): { senderId: string; seq: number; lines: Uint8Array } | null {
  const end = data.indexOf(0x0a);
  if (end < 0 || end > 64) return null;
  const match = /^(\S+) (\d+)$/.exec(Buffer.from(data.buffer, data.byteOffset, end).toString('latin1'));
  if (match === null) return null;
  return { senderId: match[1], seq: Number(match[2]), lines: data.subarray(end + 1) };
}
