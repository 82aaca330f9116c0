// Placeholder until the owning engineer lands the real command.
import { Command } from 'commander';

export function daemonCommand(): Command {
  return new Command('daemon').description('not yet implemented').action(() => {
    console.error('daemon: not yet implemented');
    process.exitCode = 2;
  });
}
