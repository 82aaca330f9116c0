/**
 * Daemon → client membership messages (§5.1, §5.3), little-endian with the daemon's
 * marker in `type` and `hint` (what x86 Spread daemons send, §3.2). Pure encoders.
 */
import { ENDIAN_MARKER, ServiceType } from '../protocol/constants.js';
import { encodeMessage } from '../protocol/message.js';
import { encodeRegularBody, encodeTransitionalBody, type GroupId } from '../protocol/membership.js';

const EMPTY = new Uint8Array(0);

export type MembershipCause = 'join' | 'leave' | 'disconnect' | 'network';

const CAUSE_BITS: Record<MembershipCause, number> = {
  join: ServiceType.CAUSED_BY_JOIN,
  leave: ServiceType.CAUSED_BY_LEAVE,
  disconnect: ServiceType.CAUSED_BY_DISCONNECT,
  network: ServiceType.CAUSED_BY_NETWORK,
};

/**
 * REG_MEMB_MESS | CAUSED_BY_*: `groups` = all members after the change, body = gid +
 * vs sets. For join/leave/disconnect there is one vs set holding the changed member
 * and the local offset is 0 (§5.1).
 */
export function encodeRegularMembership(
  group: string,
  cause: MembershipCause,
  gid: GroupId,
  members: readonly string[],
  vsSets: readonly (readonly string[])[],
  localSetIndex: number,
): Uint8Array {
  return encodeMessage({
    type: ServiceType.REG_MEMB_MESS | CAUSE_BITS[cause],
    sender: group,
    groups: members,
    hintRaw: ENDIAN_MARKER,
    data: encodeRegularBody(gid, vsSets, localSetIndex),
  });
}

/** TRANSITION_MESS: no groups, body = the group's old gid (§5.1). */
export function encodeTransitional(group: string, gid: GroupId): Uint8Array {
  return encodeMessage({
    type: ServiceType.TRANSITION_MESS,
    sender: group,
    groups: [],
    hintRaw: ENDIAN_MARKER,
    data: encodeTransitionalBody(gid),
  });
}

/** Self-leave: CAUSED_BY_LEAVE alone, no groups, no body (§5.1). */
export function encodeSelfLeave(group: string): Uint8Array {
  return encodeMessage({ type: ServiceType.CAUSED_BY_LEAVE, sender: group, groups: [], hintRaw: ENDIAN_MARKER, data: EMPTY });
}
