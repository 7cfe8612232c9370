import type { Command } from './command.js';

/** Help text for a group of subcommands (or one command). */
export function groupUsage(name: string, commands: Record<string, Command>): string {
  const lines = Object.values(commands).map((c) => `  ${c.usage}\n      ${c.summary}`);
  return `Usage:\n${lines.join('\n')}\n\n${SETTINGS_HELP}`;
}

export function commandUsage(command: Command): string {
  return `Usage: ${command.usage}\n  ${command.summary}\n\n${SETTINGS_HELP}`;
}

export const SETTINGS_HELP = `The control API's URL and an API key come from PGWAKE_API_URL and PGWAKE_API_KEY,
or from ~/.config/pgwake/config.json: {"api_url": "http://127.0.0.1:8080", "api_key": "pgw_…"}.
--json prints what the API answered, as JSON.
Exit codes: 0 done; 1 the API refused or failed; 2 bad arguments or settings;
3 the API could not be reached; 4 the API key was refused; 5 not found.`;
