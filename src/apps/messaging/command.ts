/**
 * `tspread mq`: queues and request/reply from the shell.
 *
 *   tspread mq send QUEUE [BODY]          one message, or one per stdin line
 *   tspread mq consume QUEUE              prints one message per line
 *   tspread mq ask QUEUE BODY             prints the reply; exit 1 on timeout
 *   tspread mq reply QUEUE --exec CMD     answers each request with CMD's output (stdin = request)
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { Command, InvalidArgumentError, Option } from 'commander';
import { integer } from '../../tools/options.js';
import type { Body, Headers } from './envelope.js';
import type { ReceivedMessage } from './message.js';
import { Messaging } from './messaging.js';

interface ConnectionOptions {
  server: string;
  socketDir?: string;
}

interface BodyOptions {
  json?: boolean;
  header: Record<string, string>;
}

function connectionOptions(command: Command): Command {
  return command
    .option('-s, --server <daemon>', 'daemon: 4803 (Unix socket) or 4803@host', '4803')
    .option('--socket-dir <dir>', "directory of the daemon's Unix socket (default /tmp)");
}

function bodyOptions(command: Command): Command {
  return command
    .option('--json', 'the body is JSON (default: bytes, the text as given)')
    .option('-H, --header <name=value>', 'a header (repeatable)', collectHeader, {});
}

function collectHeader(value: string, previous: Record<string, string>): Record<string, string> {
  const equals = value.indexOf('=');
  if (equals <= 0) throw new InvalidArgumentError('expected name=value');
  return { ...previous, [value.slice(0, equals)]: value.slice(equals + 1) };
}

function parseBody(text: string, json: boolean | undefined): Body {
  if (!json) return Buffer.from(text, 'utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new Error(`the body is not valid JSON: ${text.length > 60 ? `${text.slice(0, 60)}…` : text}`);
  }
}

/** A body as one line of text: bytes as UTF-8, JSON values serialized. */
export function bodyText(body: Body): string {
  return body instanceof Uint8Array ? Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8') : JSON.stringify(body);
}

function open(options: ConnectionOptions): Promise<Messaging> {
  return Messaging.connect({ daemon: options.server, unixSocketDir: options.socketDir });
}

/** An action whose errors print as `tspread mq NAME: message` and exit 1, without a stack trace. */
function reporting<Args extends unknown[]>(name: string, action: (...args: Args) => Promise<void>): (...args: Args) => Promise<void> {
  return async (...args) => {
    try {
      await action(...args);
    } catch (error) {
      process.stderr.write(`tspread mq ${name}: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exit(1);
    }
  };
}

/** Runs until SIGINT/SIGTERM or `done` resolves, then closes the client. */
async function runUntilStopped(mq: Messaging, done: Promise<void>): Promise<void> {
  const stopped = new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await Promise.race([done, stopped, mq.session.closed().then(() => Promise.reject(new Error('the daemon closed the session')))]);
  await mq.close();
}

function sendCommand(): Command {
  return bodyOptions(connectionOptions(new Command('send')))
    .description('send one message (BODY), or one message per line of stdin')
    .argument('<queue>', 'queue name')
    .argument('[body]', 'message body (default: read lines from stdin)')
    .option('--key <key>', 'idempotency key (with BODY): a retry with the same key is queued once')
    .action(reporting('send', async (queue: string, body: string | undefined, options: ConnectionOptions & BodyOptions & { key?: string }) => {
      const mq = await open(options);
      const headers: Headers = options.header;
      if (body !== undefined) mq.send(queue, parseBody(body, options.json), { headers, idempotencyKey: options.key });
      else {
        if (options.key !== undefined) throw new Error('--key needs a BODY argument (stdin lines would all share the key)');
        for await (const line of createInterface({ input: process.stdin, crlfDelay: Infinity })) {
          if (!mq.send(queue, parseBody(line, options.json), { headers })) await mq.drained();
        }
      }
      await mq.drained();
      await mq.close();
    }));
}

function consumeCommand(): Command {
  return connectionOptions(new Command('consume'))
    .description('consume messages of a queue (competing with other consumers), one per line on stdout')
    .argument('<queue>', 'queue name')
    .option('--prefetch <n>', 'most unacknowledged messages held at once', integer(1, 1_000_000), 1000)
    .option('-n, --count <n>', 'exit after this many messages', integer(1, Number.MAX_SAFE_INTEGER))
    .option('--json-lines', 'print {"id","deliveryCount","headers","body"} objects instead of bodies')
    .action(reporting('consume', async (queue: string, options: ConnectionOptions & { prefetch: number; count?: number; jsonLines?: boolean }) => {
      const mq = await open(options);
      let left = options.count ?? Infinity;
      let finish!: () => void;
      const done = new Promise<void>((resolve) => (finish = resolve));
      await mq.consume(
        queue,
        async (message) => {
          if (left <= 0) throw new Error('enough messages taken');
          // Acknowledged once the line is out of this process: a pipe's writes are buffered here
          // when it is full, and a consumer killed then would lose lines it had acknowledged.
          const written = writeOut(`${options.jsonLines ? messageLine(message) : bodyText(message.body)}\n`);
          if (--left === 0) void written.then(finish);
          await written;
        },
        { prefetch: options.prefetch },
      );
      process.stderr.write(`consuming ${queue}\n`);
      await runUntilStopped(mq, done);
    }));
}

function writeOut(text: string): Promise<void> {
  return new Promise((resolve, reject) => process.stdout.write(text, (error) => (error ? reject(error) : resolve())));
}

function messageLine(message: ReceivedMessage): string {
  const body = message.body instanceof Uint8Array ? bodyText(message.body) : message.body;
  return JSON.stringify({ id: message.id, deliveryCount: message.deliveryCount, headers: message.headers, body });
}

function askCommand(): Command {
  return bodyOptions(connectionOptions(new Command('ask')))
    .description('send a request to a queue and print the reply (exit 1 when none comes in time)')
    .argument('<queue>', 'queue name')
    .argument('<body>', 'request body')
    .option('-t, --timeout <ms>', 'how long to wait for the reply', integer(1, 3_600_000), 5000)
    .action(reporting('ask', async (queue: string, body: string, options: ConnectionOptions & BodyOptions & { timeout: number }) => {
      const mq = await open(options);
      try {
        const reply = await mq.ask(queue, parseBody(body, options.json), { timeoutMs: options.timeout, headers: options.header });
        const text = bodyText(reply.body);
        process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
      } finally {
        await mq.close();
      }
    }));
}

/** Runs `command` in a shell with `input` on stdin; resolves with its stdout and exit code. */
function runShell(command: string, input: Uint8Array): Promise<{ output: Buffer; code: number }> {
  return new Promise((resolve) => {
    const child = spawn('sh', ['-c', command], { stdio: ['pipe', 'pipe', 'inherit'] });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
    child.stdin.on('error', () => {});
    child.stdin.end(input);
    child.on('error', (error) => resolve({ output: Buffer.from(`${error.message}\n`), code: 127 }));
    child.on('close', (code) => resolve({ output: Buffer.concat(chunks), code: code ?? 1 }));
  });
}

function replyCommand(): Command {
  return connectionOptions(new Command('reply'))
    .description("answer each request of a queue with a shell command's output (the request body on its stdin)")
    .argument('<queue>', 'queue name')
    .addOption(new Option('--exec <command>', 'shell command run once per request').makeOptionMandatory())
    .option('--prefetch <n>', 'most requests handled at once', integer(1, 10_000), 16)
    .option('-n, --count <n>', 'exit after answering this many requests', integer(1, Number.MAX_SAFE_INTEGER))
    .action(reporting('reply', async (queue: string, options: ConnectionOptions & { exec: string; prefetch: number; count?: number }) => {
      const mq = await open(options);
      let left = options.count ?? Infinity;
      let finish!: () => void;
      const done = new Promise<void>((resolve) => (finish = resolve));
      await mq.consume(
        queue,
        async (message) => {
          if (!message.isRequest) return;
          const input = message.body instanceof Uint8Array ? message.body : Buffer.from(bodyText(message.body), 'utf8');
          const { output, code } = await runShell(options.exec, input);
          message.reply(output, { headers: { 'exit-code': String(code) } });
          if (--left === 0) finish();
        },
        { prefetch: options.prefetch },
      );
      process.stderr.write(`replying on ${queue}\n`);
      await runUntilStopped(mq, done);
    }));
}

export function mqCommand(): Command {
  return new Command('mq')
    .description('message queues with competing consumers and request/reply (tspread/messaging, docs/messaging.md)')
    .addCommand(sendCommand())
    .addCommand(consumeCommand())
    .addCommand(askCommand())
    .addCommand(replyCommand());
}
