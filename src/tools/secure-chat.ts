/**
 * `tspread secure-keygen NAME [--out DIR]`: writes an Ed25519 identity, NAME.key
 * (private, mode 0600) and NAME.pub (public, for the others' trust lists).
 *
 * `tspread secure-chat -g GROUP --identity NAME --key FILE --trust PATH [-s daemon]`:
 * joins GROUP as an end-to-end encrypted group (tspread/secure-group). Lines read
 * from stdin are sent; stdout gets one line per event:
 *   ready <fingerprint> <identity,identity,…>   a key for a new view
 *   excluded <untrusted|late>                    this view goes on without us (late: we rejoin)
 *   <identity>: <text>                           a message
 * The trust list is a directory of NAME.pub files or a JSON object {name: PEM};
 * SIGHUP reloads it (it applies from the next view). End of input leaves the group.
 */
import { chmodSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { createInterface } from 'node:readline';
import { Command } from 'commander';
import { connect } from '../client/index.js';
import { generateIdentity, secureGroup } from '../apps/secure-group/index.js';

interface ChatOptions {
  group: string;
  identity: string;
  key: string;
  trust: string;
  spread: string;
  socketDir?: string;
  rosterWaitMs: string;
}

/** Reads a trust list: a directory of NAME.pub files, or a JSON object of name → PEM. */
export function readTrustList(path: string): Record<string, string> {
  if (statSync(path).isDirectory()) {
    const entries = readdirSync(path).filter((name) => name.endsWith('.pub'));
    return Object.fromEntries(entries.map((name) => [basename(name, '.pub'), readFileSync(join(path, name), 'utf8')]));
  }
  const parsed: unknown = JSON.parse(readFileSync(path, 'utf8'));
  if (typeof parsed !== 'object' || parsed === null || Object.values(parsed).some((value) => typeof value !== 'string')) {
    throw new Error(`${path}: expected a JSON object mapping identity names to public keys (PEM)`);
  }
  return parsed as Record<string, string>;
}

export function secureKeygenCommand(): Command {
  return new Command('secure-keygen')
    .description('write an Ed25519 identity for secure groups: NAME.key (private) and NAME.pub (for trust lists)')
    .argument('<name>', 'identity name')
    .option('--out <dir>', 'directory for the two files', '.')
    .action((name: string, options: { out: string }) => {
      const { publicKeyPem, privateKeyPem } = generateIdentity(name);
      const keyPath = join(options.out, `${name}.key`);
      writeFileSync(keyPath, privateKeyPem, { mode: 0o600 });
      chmodSync(keyPath, 0o600);
      writeFileSync(join(options.out, `${name}.pub`), publicKeyPem);
      process.stdout.write(`wrote ${keyPath} and ${join(options.out, `${name}.pub`)}\n`);
    });
}

export function secureChatCommand(): Command {
  return new Command('secure-chat')
    .description('chat over an end-to-end encrypted group: contributory keys, a new key on every view (tspread/secure-group)')
    .requiredOption('-g, --group <group>', 'group name')
    .requiredOption('--identity <name>', 'this member\'s identity name, as listed in the trust list')
    .requiredOption('--key <file>', 'this member\'s Ed25519 private key (PEM, from secure-keygen)')
    .requiredOption('--trust <path>', 'trust list: a directory of NAME.pub files or a JSON file {name: PEM}')
    .option('-s, --spread <daemon>', 'Spread name of the daemon: 4803 (Unix socket) or 4803@host', '4803')
    .option('--socket-dir <dir>', "directory of the daemon's Unix socket (default /tmp)")
    .option('--roster-wait-ms <ms>', 'how long to wait for silent group members before closing the roster', '500')
    .action(async (options: ChatOptions) => {
      let group;
      try {
        const session = await connect({ daemon: options.spread, unixSocketDir: options.socketDir });
        group = secureGroup(session, options.group, {
          identity: { name: options.identity, privateKey: readFileSync(options.key, 'utf8') },
          trust: readTrustList(options.trust),
          rosterWaitMs: Number(options.rosterWaitMs),
        });
        session.once('close', () => process.exit(1));
      } catch (error) {
        process.stderr.write(`tspread secure-chat: ${(error as Error).message}\n`);
        process.exit(1);
      }
      const chat = group;
      chat.on('ready', (ready) => process.stdout.write(`ready ${ready.fingerprint} ${ready.members.map((m) => m.identity).join(',')}\n`));
      chat.on('excluded', ({ reason }) => process.stdout.write(`excluded ${reason}\n`));
      chat.on('message', (message) => process.stdout.write(`${message.identity}: ${message.data.toString('utf8')}\n`));
      process.on('SIGHUP', () => {
        try {
          chat.setTrust(readTrustList(options.trust));
        } catch (error) {
          process.stderr.write(`tspread secure-chat: trust list not reloaded: ${(error as Error).message}\n`);
        }
      });
      const lines = createInterface({ input: process.stdin });
      lines.on('line', (line) => {
        try {
          chat.send(line);
        } catch (error) {
          process.stderr.write(`tspread secure-chat: not sent: ${(error as Error).message}\n`);
        }
      });
      lines.on('close', () => {
        chat.close();
        setTimeout(() => process.exit(0), 100);
      });
    });
}
