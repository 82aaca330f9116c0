// Placeholder until the management engineer lands monitor, check and dashboard.
import type { Command } from 'commander';

export function managementCommands(): Command[] {
  return [];
}
