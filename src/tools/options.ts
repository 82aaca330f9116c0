/** Option parsers shared by the `tspread` subcommands. */
import { InvalidArgumentError } from 'commander';

/** A commander argument parser accepting an integer in min..max. */
export function integer(min: number, max: number): (value: string) => number {
  return (value) => {
    const parsed = Number(value);
    if (!Number.isInteger(parsed) || parsed < min || parsed > max) {
      throw new InvalidArgumentError(`expected an integer in ${min}..${max}`);
    }
    return parsed;
  };
}
