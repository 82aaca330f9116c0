// Placeholder until the owning engineer lands the real command.
import { Command } from 'commander';

export function userCommand(): Command {
  return new Command('user').description('not yet implemented').action(() => {
    console.error('user: not yet implemented');
    process.exitCode = 2;
  });
}
