/**
 * What a daemon reports about itself: the contract between the daemon core and
 * the management tools (monitor, check, metrics, dashboard). Plain data, JSON-safe.
 */
import type { RingStatus } from '../ring/types.js';

export interface GroupStatus {
  name: string;
  /** Members across the whole ring. */
  members: number;
  /** Members connected to this daemon. */
  localMembers: number;
  /** Data messages delivered to this group (ordered at this daemon) since start. */
  messages: number;
  bytes: number;
}

export interface DaemonStatusSnapshot {
  daemon: {
    name: string;
    vid: number;
    address: string;
    port: number;
    version: string;
    startedAtMs: number;
    uptimeSeconds: number;
  };
  config: {
    source: string;
    hash: number;
    daemons: Array<{ name: string; address: string; vid: number }>;
  };
  ring: RingStatus;
  /** Group-layer state: 'gop' | 'gtrans' | 'ggather' | 'ggt' (§11.5). */
  groupState: string;
  sessions: number;
  groups: GroupStatus[];
  traffic: {
    /** Client messages accepted from local sessions. */
    messagesReceived: number;
    bytesReceived: number;
    /** Client messages delivered in order at this daemon (each once, whatever the number of recipients). */
    messagesDelivered: number;
    bytesDelivered: number;
    /** Sessions cut for reading too slowly. */
    slowSessionsCut: number;
  };
  /** Token rotations per second over the last few seconds. */
  tokenRoundsPerSecond: number;
  /** Refusals by the security layers (docs/security.md); absent where the daemon adds none. */
  security?: SecurityStatus;
}

export interface SecurityStatus {
  /** Whether ring datagrams are sealed, and with which key ids. */
  ringSealed: boolean;
  ringKeyIds: { sealing: number; accepted: number[] } | null;
  /** Ring datagrams dropped, by reason (unsealed, malformed, unknown-key, authentication, replay, sender-mismatch). */
  ringDatagramsRejected: Record<string, number>;
  /** Sessions refused during the handshake (auth methods, connect rules, quota). */
  sessionsRejected: number;
  /** Joins and multicasts refused by the access-control file. */
  accessDenied: number;
}
