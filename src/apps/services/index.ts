/**
 * `tspread/services`: fault-tolerant request handling over a Spread group (as
 * MEAD did for CORBA), on the public client API only. Active or warm-passive
 * replication, switched at run time; proactive recovery; state transfer to
 * joining replicas. docs/services.md describes the styles and guarantees.
 */
export { serve, ServiceReplica } from './replica.js';
export type { ServeOptions, ServiceReplicaEvents } from './replica.js';
export { ServiceClient } from './client.js';
export type { CallOptions, ReplyQuorum, ServiceClientOptions } from './client.js';
export { ServiceCore, REPLY_CACHE_ENTRIES } from './service-core.js';
export type { CoreEffects, Handler, Handlers } from './service-core.js';
export { assessHealth, HealthMonitor } from './health.js';
export type { HealthSample, HealthThresholds } from './health.js';
export { ServiceError, PAYLOAD_BYTES_MAX, UPDATE_BYTES_MAX, STYLES } from './protocol.js';
export type { ErrorCode, Outcome, Style } from './protocol.js';
export { switchStyle } from './switch.js';
export { counterHandlers, counterInitialState } from './counter.js';
export type { CounterState } from './counter.js';
