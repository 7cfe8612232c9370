import type { ControlApiClient } from './api-client.js';
import type { Options, ParsedArgs } from './args.js';
import type { Terminal } from './terminal.js';

/** What a subcommand runs with. */
export interface CommandContext {
  api: ControlApiClient;
  term: Terminal;
  args: ParsedArgs;
  /** `--json`: print the API's JSON as it came, for scripts. */
  json: boolean;
}

/** One subcommand: its flags, its arguments, its help and what it does. */
export interface Command {
  usage: string;
  summary: string;
  options?: Options;
  positionals: { min: number; max: number; names: string };
  run(ctx: CommandContext): Promise<number>;
}

/** Prints `value` as indented JSON. */
export function printJson(ctx: CommandContext, value: unknown): void {
  ctx.term.out(JSON.stringify(value, null, 2));
}
