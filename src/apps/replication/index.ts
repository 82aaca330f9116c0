/**
 * tspread/replication: state replicated by the Amir–Tutu engine on the public client API.
 */
export { ACTION_BYTES_MAX, ActionInDoubtError, NotPrimaryError, ReplicationEngine } from './engine.js';
export type { AppliedEvent, EngineOptions, EngineStatus, ReplicationEngineEvents, StateMachine } from './engine.js';
export { ReplicatedMap } from './map.js';
export type { MapChange, ReplicatedMapEvents, ReplicatedMapOptions } from './map.js';
