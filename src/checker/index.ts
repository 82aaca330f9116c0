/** Public surface of the EVS checker: the log format, the recorder and `checkEvs`. */
export * from './log.js';
export { checkEvs, assertEvs, formatViolations, type CheckOptions, type EvsProperty, type Violation } from './evs.js';
