import { parseArgs, type ParseArgsConfig } from 'node:util';

/** Wrong use of the command line: exit code 2, with this message and the command's usage. */
export class UsageError extends Error {}

export type Options = NonNullable<ParseArgsConfig['options']>;

export interface ParsedArgs {
  positionals: string[];
  values: Record<string, string | boolean | undefined>;
}

/** `--json` and `--help` are understood by every command. */
const COMMON: Options = { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } };

/** Parses a subcommand's arguments strictly: unknown flags and a wrong number of arguments are usage errors. */
export function parseCommand(argv: string[], options: Options, positionals: { min: number; max: number; names: string }): ParsedArgs {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: { ...COMMON, ...options }, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message.replace(/^TypeError \[[A-Z_]+\]: /, ''));
  }
  const values = parsed.values as ParsedArgs['values'];
  if (values.help) return { positionals: parsed.positionals, values };
  const n = parsed.positionals.length;
  if (n < positionals.min) throw new UsageError(`missing argument: expected ${positionals.names}`);
  if (n > positionals.max) throw new UsageError(`unexpected argument "${parsed.positionals[positionals.max]}": expected ${positionals.names}`);
  return { positionals: parsed.positionals, values };
}

/** An integer flag's value, or undefined when the flag was not given. */
export function integerOption(values: ParsedArgs['values'], name: string): number | undefined {
  const raw = values[name];
  if (raw === undefined) return undefined;
  if (typeof raw !== 'string' || !/^-?\d+$/.test(raw)) throw new UsageError(`--${name} must be a whole number, got "${String(raw)}"`);
  return Number(raw);
}
