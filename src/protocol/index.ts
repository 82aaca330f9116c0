/** The client wire protocol of Spread 5.0.1: pure codecs over Uint8Array, no I/O. */
export * from './constants.js';
export * from './names.js';
export * from './header.js';
export * from './message.js';
export * from './framer.js';
export * from './handshake.js';
export * from './membership.js';
