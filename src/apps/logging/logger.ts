/** The apps' shared logging helpers now live in src/apps/shared/logger.ts. */
export * from '../shared/logger.js';
