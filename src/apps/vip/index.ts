/**
 * `tspread/vip`: virtual-IP fail-over (wackamole) as a library. Built only on the public
 * client API, so it works against a Spread 5.0.1 daemon as well as `tspread daemon`.
 */
export { VipAgent } from './agent.js';
export type { VipAgentOptions, VipLogger, VipStatus } from './agent.js';
export { parseVipConfig, VipConfigError, VIP_DEFAULTS } from './config.js';
export type { DeviceAddress, VipConfig, VirtualInterface } from './config.js';
export { assign, planBalance, holdersOf } from './assignment.js';
export type { Assignment, ClusterState, MemberState } from './assignment.js';
export { VipGroupState, encodeVipMessage, decodeVipMessage } from './group-state.js';
export type { VipMessage, ViewChange, ViewOutcome } from './group-state.js';
export { requestControl, formatStatus } from './control.js';
export type { ControlReply, ControlRequest } from './control.js';
