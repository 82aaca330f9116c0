/** Switching a service's replication style: one ordered operation, so every replica switches at the same request. */
import type { Session } from '../../client/index.js';
import { OPERATION_TYPE } from '../shared/replicated-group.js';
import { encode, type Style } from './protocol.js';

export function switchStyle(session: Session, group: string, style: Style): void {
  session.multicast(group, encode({ k: 'w', style }), { service: 'agreed', messType: OPERATION_TYPE });
}
