/**
 * `tspread password-hash <user>`: reads a password from the first line of stdin and prints
 * the PasswordFile line for it (scrypt, fresh salt; docs/security.md). The password is never
 * an argument, so it stays out of shell history and `ps`.
 */
import { Command } from 'commander';
import { createInterface } from 'node:readline';
import { passwordLine, SCRYPT_COST_DEFAULT } from '../security/passwords.js';
import { integer } from './options.js';

export function passwordHashCommand(): Command {
  return new Command('password-hash')
    .description('print a PasswordFile line (PWORD method) for <user>; the password is read from stdin')
    .argument('<user>', 'user name (1..31 bytes, no ":")')
    .option('--cost <N>', 'scrypt cost, a power of two (checked on the daemon at every PWORD handshake)', integer(2, 1 << 20), SCRYPT_COST_DEFAULT)
    .action(async (user: string, options: { cost: number }) => {
      if (user.includes(':') || Buffer.byteLength(user) > 31) {
        console.error('password-hash: a user name is 1..31 bytes without ":"');
        process.exit(2);
      }
      if ((options.cost & (options.cost - 1)) !== 0) {
        console.error('password-hash: --cost must be a power of two');
        process.exit(2);
      }
      const lines = createInterface({ input: process.stdin });
      const password = await new Promise<string | null>((resolve) => {
        lines.once('line', (line) => resolve(line));
        lines.once('close', () => resolve(null));
      });
      lines.close();
      if (password === null || password === '' || Buffer.byteLength(password) > 31) {
        console.error('password-hash: give a password of 1..31 bytes on the first line of stdin');
        process.exit(2);
      }
      console.log(passwordLine(user, password, options.cost));
    });
}
