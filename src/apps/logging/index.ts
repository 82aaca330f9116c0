/**
 * `tspread/logging`: web-farm access logging over Spread, built on the public
 * client API only (so it works against a Spread 5.0.1 daemon too).
 * docs/logging.md describes set-up and delivery guarantees.
 */
export { accessLog } from './access-log.js';
export type { AccessLogHandler, AccessLogOptions } from './access-log.js';
export { clfTime, escapeLogItem, formatLogLine } from './combined-format.js';
export type { LogFormat, RequestFacts } from './combined-format.js';
export { LogSender } from './sender.js';
export type { LogSenderOptions, LogSenderStats } from './sender.js';
export { LineSplitter } from './line-splitter.js';
export type { LineRun } from './line-splitter.js';
export { listenSyslog, parseSyslog } from './syslog.js';
export type { SyslogMessage } from './syslog.js';
export { Collector } from './collector.js';
export type { CollectorOptions } from './collector.js';
export { ConfigError, loadLogdConfig, parseLogdConfig } from './config.js';
export type { LogBlock, LogdConfig, SpreadBlock } from './config.js';
export type { Logger } from './logger.js';
export { BATCH_BYTES_MAX, LINE_BYTES_MAX } from './wire.js';
