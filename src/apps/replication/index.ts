/**
 * tspread/replication: state replicated by the Amir–Tutu engine on the public client API.
 */
export { ACTION_BYTES_MAX, ActionInDoubtError, NotPrimaryError, ReplicationEngine } from './engine.js';
export type { AppliedEvent, EngineOptions, EngineStatus, ReplicationEngineEvents, StateMachine } from './engine.js';
export { ReplicatedMap } from './map.js';
export type { MapChange, ReplicatedMapEvents, ReplicatedMapOptions } from './map.js';
export { SqlMachine, StrangerDatabaseError, encodeSqlAction, decodeSqlResult } from './sql-machine.js';
export type { SqlMachineOptions } from './sql-machine.js';
export { SqlReplica } from './sql-replica.js';
export type { SqlReplicaOptions } from './sql-replica.js';
export { SQL_ACTION_BYTES_MAX, StatementReader } from './sql-statements.js';
export type { SqlRequest } from './sql-statements.js';
export { nondeterminismIn, NondeterministicSqlError } from './sql-determinism.js';
export { databaseDigest } from './sql-digest.js';
export { BoundedLineSplitter } from './line-reader.js';
export { Lock, LockMachine, LockRefusedError, LockService, LockTimeoutError } from './locks-service.js';
export type { AcquireOptions, LockServiceOptions } from './locks-service.js';
export { LockTable } from './locks-machine.js';
export type { LockAction, LockEvent, LockMode, LockRequest, LockResult } from './locks-machine.js';
