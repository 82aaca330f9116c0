/**
 * The management subcommands of `tspread`: monitor (spmonitor), check (Nagios plugin) and
 * dashboard (live web page over a whole ring). The daemon-side pieces (monitor responder,
 * HTTP status/metrics server) are in monitor-protocol.ts and http.ts.
 */
import type { Command } from 'commander';
import { checkCommand } from './check.js';
import { dashboardCommand } from './dashboard.js';
import { monitorCommand } from './monitor.js';

export function managementCommands(): Command[] {
  return [monitorCommand(), checkCommand(), dashboardCommand()];
}
