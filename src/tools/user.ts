/**
 * `tspread user`: an interactive Spread client, the counterpart of Spread's
 * spuser (spread-protocol.md §10.2), with the same options, commands and
 * message printout.
 *
 * Differences from spuser:
 * - Reading is always asynchronous (like the threaded sptuser): `e`/`d` switch
 *   printing of arrived messages on and off (messages wait, bounded, while off),
 *   `r` prints one waiting message, `p` prints how many are waiting.
 * - Prompts and the menu are printed only when stdin is a terminal, so a script
 *   driving it through a pipe gets only the connect line and messages.
 * - End of input acts like `q` (after `--wait` ms, to let replies arrive), and
 *   every line is flushed before exit. A lost daemon connection exits with code 1.
 * - `-n`/`-p` (PWORD auth) are not supported. `--socket-dir` sets the Unix socket directory.
 */
import { Command } from 'commander';
import * as readline from 'node:readline';
import type { Writable } from 'node:stream';
import { connect, SpreadError, type Message, type Session } from '../client/index.js';

const SEPARATOR = '============================';
const BURST_MESSAGES = 10;
const BURST_BYTES_MAX = 102_400;
const SEND_GROUPS_MAX = 10;

/** Options of runUser(). */
export interface UserOptions {
  user: string;
  server: string;
  random: boolean;
  socketDir?: string;
  waitMs: number;
  interactive: boolean;
}

/** Formats one received message the way spuser prints it. */
export function formatMessage(message: Message): string {
  const lines: string[] = [];
  const text = (data: Uint8Array) => {
    const end = data.indexOf(0);
    return Buffer.from(data.buffer, data.byteOffset, end < 0 ? data.length : end).toString('utf8');
  };
  if (message.kind === 'data') {
    lines.push(
      `received ${message.service.toUpperCase()} message from ${message.sender}, of type ${message.messType}, ` +
        `(endian ${message.endianMismatch ? 1 : 0}) to ${message.groups.length} groups `,
      `(${message.data.length} bytes): ${text(message.data)}`,
    );
  } else if (message.kind === 'reject') {
    const serviceType = (message.oldType | 0x00400000) >>> 0;
    lines.push(
      `REJECTED message from ${message.sender}, of servicetype 0x${serviceType.toString(16)} messtype ${message.messType}, ` +
        `(endian ${message.endianMismatch ? 1 : 0}) to ${message.groups.length} groups `,
      `(${message.data.length} bytes): ${text(message.data)}`,
    );
  } else if (message.cause === 'transition') {
    lines.push(`received TRANSITIONAL membership for group ${message.group}`, gidLine(message.gid));
  } else if (message.cause === 'self-leave') {
    lines.push(`received membership message that left group ${message.group}`);
  } else {
    lines.push(
      `Received REGULAR membership for group ${message.group} with ${message.members.length} members, where I am member ${message.myIndex}:`,
      ...message.members.map((member) => `\t${member}`),
      gidLine(message.gid),
    );
    if (message.cause === 'network') {
      lines.push(`Due to NETWORK change with ${message.vsSets.length} VS sets`);
      message.vsSets.forEach((set, index) => {
        const local = set === message.mySet ? 'LOCAL' : 'OTHER';
        lines.push(`${local} VS set ${index} has ${set.length} members:`, ...set.map((member) => `\t${member}`));
      });
    } else {
      lines.push(`Due to the ${message.cause.toUpperCase()} of ${message.changedMember ?? ''}`);
    }
  }
  return lines.join('\n');
}

function gidLine(gid: { procId: number; time: number; index: number }): string {
  // spuser prints the three words with %d.
  return `grp id is ${gid.procId | 0} ${gid.time | 0} ${gid.index}`;
}

function errorText(error: unknown): string {
  if (error instanceof SpreadError) return `SP_error: (${error.code}) ${error.codeName}: ${error.message}`;
  return `error: ${error instanceof Error ? error.message : String(error)}`;
}

const MENU = [
  '',
  '==========',
  'User Menu:',
  '----------',
  '',
  '\tj <group> -- join a group',
  '\tl <group> -- leave a group',
  '',
  '\ts <group> -- send a message',
  '\tm <group> -- send a multiline message to group. Terminate with empty line',
  '\tb <group> -- send a burst of messages',
  '',
  '\tr -- receive a message (when asynchronous printing is off)',
  '\tp -- poll: number of messages waiting',
  '\te -- enable asynchronous printing (default)',
  '\td -- disable asynchronous printing',
  '',
  '\tq -- quit',
].join('\n');

/** Runs the tool on the given streams; resolves to the exit code. */
export async function runUser(options: UserOptions, input: NodeJS.ReadableStream, output: Writable): Promise<number> {
  const print = (text: string) => output.write(`${text}\n`);
  const prompt = () => {
    if (options.interactive) output.write('\nUser> ');
  };
  let session: Session;
  try {
    session = await connect({
      daemon: options.server,
      privateName: options.random ? '' : options.user,
      membership: true,
      timeoutMs: 5000,
      unixSocketDir: options.socketDir,
    });
  } catch (error) {
    print(errorText(error));
    return 1;
  }
  print(`User: connected to ${options.server} with private group ${session.privateGroup}`);
  if (options.interactive) print(MENU);
  prompt();

  const messages = session[Symbol.asyncIterator]();
  let printing = true;
  let quitting = false;
  let wakePrinter = (): void => undefined;
  const show = (message: Message) => {
    print(`\n${SEPARATOR}\n${formatMessage(message)}\n`);
    if (options.interactive) output.write('User> ');
  };
  // The printer: one pending next() at a time, so 'r' and the loop never race.
  let pendingNext: Promise<IteratorResult<Message>> | null = null;
  const nextMessage = () => (pendingNext ??= messages.next().finally(() => (pendingNext = null)));
  const printer = (async () => {
    for (;;) {
      if (!printing) await new Promise<void>((resolve) => (wakePrinter = resolve));
      if (quitting) return;
      if (!printing) continue;
      const result = await nextMessage();
      if (result.done) return;
      show(result.value);
    }
  })();

  const lines = readline.createInterface({ input, terminal: false, crlfDelay: Infinity })[Symbol.asyncIterator]();
  const nextLine = async (): Promise<string | null> => {
    const result = await lines.next();
    return result.done ? null : result.value;
  };

  let exitCode = 0;
  let previousBurstBytes = 0;
  let sent = 0;
  const sessionLost = session.closed().then((error) => {
    if (quitting) return;
    print(`${errorText(error ?? new Error('session closed'))}\n${SEPARATOR}\n\nBye.`);
    exitCode = 1;
  });

  commands: for (;;) {
    const line = await Promise.race([nextLine(), sessionLost.then(() => 'lost' as const)]);
    if (line === 'lost') break;
    if (line === null) {
      if (options.waitMs > 0) await new Promise((resolve) => setTimeout(resolve, options.waitMs));
      break;
    }
    const [command = '', ...args] = line.trim().split(/\s+/);
    try {
      switch (command[0]) {
        case 'j':
        case 'l':
          if (args.length < 1) print(' invalid group ');
          else if (command[0] === 'j') session.join(args[0]);
          else session.leave(args[0]);
          break;
        case 's':
        case 'm': {
          const groups = args.slice(0, SEND_GROUPS_MAX);
          if (groups.length < 1) {
            print(' invalid group ');
            break;
          }
          if (options.interactive) output.write('enter message: ');
          let text = '';
          if (command[0] === 's') {
            const body = await nextLine();
            if (body === null) break commands;
            text = `${body}\n`;
          } else {
            for (let body = await nextLine(); body !== ''; body = await nextLine()) {
              if (body === null) break commands;
              text += `${body}\n`;
            }
          }
          session.multicast(groups, text, { service: 'safe', messType: 1 });
          sent++;
          break;
        }
        case 'b': {
          const group = args[0] ?? 'dummy_group_name';
          if (options.interactive) output.write('enter size of each message: ');
          const sizeLine = await nextLine();
          if (sizeLine === null) break commands;
          const parsed = Number.parseInt(sizeLine.trim(), 10);
          const size = Math.min(Number.isNaN(parsed) || parsed < 0 ? previousBurstBytes : parsed, BURST_BYTES_MAX);
          previousBurstBytes = size;
          print(`sending ${BURST_MESSAGES} messages of ${size} bytes`);
          for (let i = 0; i < BURST_MESSAGES; i++) {
            sent++;
            const data = Buffer.alloc(size);
            data.write(`mess num ${sent} `, 'latin1');
            session.multicast(group, data, { service: 'fifo', messType: 2 });
            print(`sent message ${i + 1} (total ${sent})`);
          }
          break;
        }
        case 'r': {
          if (printing) break; // messages are already printed as they arrive
          const result = await nextMessage();
          if (!result.done) show(result.value);
          break;
        }
        case 'p':
          print(`Polling sais: ${session.pendingMessages}`);
          break;
        case 'e':
          printing = true;
          wakePrinter();
          break;
        case 'd':
          printing = false;
          break;
        case 'q':
          break commands;
        case undefined:
          break;
        default:
          print('\nUnknown command');
          if (options.interactive) print(MENU);
      }
    } catch (error) {
      print(errorText(error));
    }
    prompt();
  }

  quitting = true;
  wakePrinter();
  if (!session.isClosed) {
    await session.disconnect();
    print(`\nBye.`);
  }
  await Promise.race([printer, new Promise((resolve) => setTimeout(resolve, 100))]);
  return exitCode;
}

/** The `tspread user` command. */
export function userCommand(): Command {
  return new Command('user')
    .description('interactive Spread client (spuser): j/l/s/m/b/r/p/e/d/q commands on stdin')
    .option('-u <name>', 'private name', 'user')
    .option('-s <daemon>', 'daemon: <port> (Unix socket) or <port>@<host>', '4803')
    .option('-r', 'let the daemon choose a random private name')
    .option('--socket-dir <dir>', 'directory of the daemon Unix socket', '/tmp')
    .option('-w, --wait <ms>', 'at end of input, wait this long for replies before quitting', '0')
    .action(async (opts: { u: string; s: string; r?: boolean; socketDir: string; wait: string }) => {
      const code = await runUser(
        {
          user: opts.u,
          server: opts.s,
          random: opts.r === true,
          socketDir: opts.socketDir,
          waitMs: Number(opts.wait) || 0,
          interactive: process.stdin.isTTY === true,
        },
        process.stdin,
        process.stdout,
      );
      // Flush stdout, then exit even if stdin is still open.
      process.stdout.write('', () => process.exit(code));
    });
}
