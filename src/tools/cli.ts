#!/usr/bin/env node
/**
 * `tspread` command line: one program, one subcommand per tool Spread users know
 * (daemon = spread, user = spuser, flooder = spflooder, monitor = spmonitor) plus
 * tspread's own (check, dashboard) and the applications' (log-send and logd =
 * spreadlogd, session-cache = Splash, vip = wackamole,
 * sql = replicated SQLite after Congruity). Each subcommand lives in
 * spreadlogd, session-cache = Splash, vip = wackamole, mq = Courier). Each subcommand lives in
 * spreadlogd, session-cache = Splash, vip = wackamole, secure-chat = an end-to-end
 * encrypted group). Each subcommand lives in
 * spreadlogd, session-cache = Splash, vip = wackamole, svc = MEAD). Each subcommand lives in
 * its own module.
 */
import { Command } from 'commander';
import { daemonCommand } from './daemon-command.js';
import { userCommand } from './user.js';
import { flooderCommand } from './flooder.js';
import { managementCommands } from '../management/commands.js';
import { logSendCommand } from './log-send.js';
import { logdCommand } from './logd.js';
import { sessionCacheCommand } from './session-cache.js';
import { vipCommand } from '../apps/vip/command.js';
import { passwordHashCommand } from './password-hash.js';
import { sqlCommand } from './sql.js';
import { mqCommand } from '../apps/messaging/command.js';
import { secureChatCommand, secureKeygenCommand } from './secure-chat.js';
import { servicesCommand } from './services.js';

const program = new Command('tspread')
  .description('Spread group communication toolkit for Node.js (wire-compatible with Spread 5.0.1)')
  .version('0.1.0');

program.addCommand(daemonCommand());
program.addCommand(userCommand());
program.addCommand(flooderCommand());
for (const command of managementCommands()) program.addCommand(command);
program.addCommand(logSendCommand());
program.addCommand(logdCommand());
program.addCommand(sessionCacheCommand());
program.addCommand(vipCommand());
program.addCommand(passwordHashCommand());
program.addCommand(sqlCommand());
program.addCommand(mqCommand());
program.addCommand(secureChatCommand());
program.addCommand(secureKeygenCommand());
program.addCommand(servicesCommand());

await program.parseAsync(process.argv);
