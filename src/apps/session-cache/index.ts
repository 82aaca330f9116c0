/**
 * `tspread/session-cache`: a TLS session cache shared by a web farm over Spread
 * (Splash), built on the public client API only (so it works against a Spread
 * 5.0.1 daemon too). docs/session-cache.md describes set-up and the threat model.
 */
export { CacheServer, CACHE_VERSION } from './cache-server.js';
export type { CacheCounters } from './cache-server.js';
export { absoluteExpiryMs, KEY_BYTES_MAX, MemcacheParser } from './memcache-protocol.js';
export type { MemcacheCommand } from './memcache-protocol.js';
export { shareTlsSessions } from './tls-sessions.js';
export type { SharedTlsSessions, ShareTlsSessionsOptions } from './tls-sessions.js';
export { TicketKeyRing, TICKET_KEY_BYTES } from './ticket-keys.js';
export { TicketGrace } from './ticket-grace.js';
export { offeredTicketKeyName } from './client-hello.js';
export type { TicketKey } from './ticket-keys.js';
export { SharedMap, VALUE_BYTES_MAX } from '../shared/shared-map.js';
export type { SharedMapOptions, SharedMapStats } from '../shared/shared-map.js';
export { ReplicatedGroup } from '../shared/replicated-group.js';
export type { Replica, ReplicatedGroupOptions } from '../shared/replicated-group.js';
