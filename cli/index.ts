import { ApiCallError, ControlApiClient, UnreachableError } from './api-client.js';
import { parseCommand, UsageError } from './args.js';
import type { Command } from './command.js';
import { credentialsCommand } from './commands/credentials.js';
import { DB_FLAGS, dbCommands } from './commands/dbs.js';
import { tenantCommands } from './commands/tenants.js';
import { resolveConnection, SettingsError, type Connection } from './connection.js';
import { EXIT } from './exit-codes.js';
import { reportApiError } from './report-error.js';
import { processTerminal, type Terminal } from './terminal.js';
import { commandUsage, groupUsage } from './usage.js';

export { EXIT } from './exit-codes.js';

const GROUPS: Record<string, Record<string, Command>> = { tenants: tenantCommands, dbs: dbCommands };

/** The `pgwake` commands this CLI answers. */
export const CLI_COMMANDS = ['tenants', 'dbs', 'credentials'] as const;

export function handles(command: string | undefined): boolean {
  return (CLI_COMMANDS as readonly (string | undefined)[]).includes(command);
}

/**
 * The CLI for people over the control API (HTTP only): `pgwake tenants …`,
 * `pgwake dbs …`, `pgwake credentials …`. Readable tables, or `--json`; the
 * API's errors in plain words; exit codes in `EXIT`. Runs `argv` (without
 * `pgwake`, e.g. `['dbs', 'list', 'shop']`) and resolves to the exit code.
 */
export async function runCli(argv: string[], term: Terminal = processTerminal()): Promise<number> {
  const [group, ...rest] = argv;
  let name: string;
  let command: Command | undefined;
  let args: string[];
  if (group === 'credentials') {
    name = 'credentials';
    command = credentialsCommand;
    args = rest;
  } else {
    const commands = GROUPS[group ?? ''];
    if (!commands) {
      term.err(`pgwake: unknown command "${group}"`);
      return EXIT.usage;
    }
    const [sub, ...subArgs] = rest;
    if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
      (sub === undefined ? term.err : term.out)(groupUsage(group!, commands));
      return sub === undefined ? EXIT.usage : EXIT.ok;
    }
    command = commands[sub];
    if (!command) {
      term.err(`pgwake ${group}: unknown subcommand "${sub}"\n\n${groupUsage(group!, commands)}`);
      return EXIT.usage;
    }
    name = `${group} ${sub}`;
    args = subArgs;
  }

  let parsed;
  try {
    parsed = parseCommand(args, command.options ?? {}, command.positionals);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    term.err(`pgwake ${name}: ${err.message}\n\n${commandUsage(command)}`);
    return EXIT.usage;
  }
  if (parsed.values.help) {
    term.out(commandUsage(command));
    return EXIT.ok;
  }
  const json = parsed.values.json === true;

  let connection: Connection;
  try {
    connection = resolveConnection(term.env, term.err);
  } catch (err) {
    if (!(err instanceof SettingsError)) throw err;
    term.err(`pgwake: ${err.message}`);
    return EXIT.usage;
  }

  const api = new ControlApiClient(connection, 'pgwake-cli');
  try {
    return await command.run({ api, term, args: parsed, json });
  } catch (err) {
    if (err instanceof ApiCallError) return reportApiError(term, err, { json, connection, flags: group === 'dbs' ? DB_FLAGS : undefined });
    if (err instanceof UnreachableError) {
      term.err(`pgwake: ${err.message}`);
      return EXIT.unreachable;
    }
    if (err instanceof UsageError) {
      term.err(`pgwake ${name}: ${err.message}`);
      return EXIT.usage;
    }
    throw err;
  }
}
