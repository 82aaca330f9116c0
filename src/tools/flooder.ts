// Placeholder until the owning engineer lands the real command.
import { Command } from 'commander';

export function flooderCommand(): Command {
  return new Command('flooder').description('not yet implemented').action(() => {
    console.error('flooder: not yet implemented');
    process.exitCode = 2;
  });
}
