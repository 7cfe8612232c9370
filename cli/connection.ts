import { readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';

/** Where the CLI sends requests, and with which key. */
export interface Connection {
  apiUrl: string;
  apiKey: string;
  /** Where each came from, to say so in error messages. */
  source: { apiUrl: string; apiKey: string };
}

/** A problem with the CLI's own settings: exit code 2, with this message. */
export class SettingsError extends Error {}

/** `$XDG_CONFIG_HOME/pgwake/config.json`, else `~/.config/pgwake/config.json`. */
export function configFilePath(env: NodeJS.ProcessEnv): string {
  const base = env.XDG_CONFIG_HOME && path.isAbsolute(env.XDG_CONFIG_HOME) ? env.XDG_CONFIG_HOME : path.join(env.HOME ?? homedir(), '.config');
  return path.join(base, 'pgwake', 'config.json');
}

/**
 * The API URL and key: `PGWAKE_API_URL` / `PGWAKE_API_KEY` from the
 * environment, else `api_url` / `api_key` from the config file. Warns (via
 * `warn`) when the file holding a key can be read by other users.
 */
export function resolveConnection(env: NodeJS.ProcessEnv, warn: (line: string) => void): Connection {
  const file = configFilePath(env);
  let fromFile: { api_url?: unknown; api_key?: unknown } = {};
  let text: string | undefined;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new SettingsError(`cannot read ${file}: ${(err as Error).message}`);
  }
  if (text !== undefined) {
    try {
      fromFile = JSON.parse(text) as typeof fromFile;
    } catch (err) {
      throw new SettingsError(`${file} is not valid JSON: ${(err as Error).message}`);
    }
    if (fromFile === null || typeof fromFile !== 'object' || Array.isArray(fromFile)) throw new SettingsError(`${file} must hold a JSON object like {"api_url": "...", "api_key": "..."}`);
    for (const field of ['api_url', 'api_key'] as const) {
      if (fromFile[field] !== undefined && typeof fromFile[field] !== 'string') throw new SettingsError(`${file}: ${field} must be a string`);
    }
  }

  const apiUrl = env.PGWAKE_API_URL || (fromFile.api_url as string | undefined);
  const apiKey = env.PGWAKE_API_KEY || (fromFile.api_key as string | undefined);
  const hint = `set PGWAKE_API_URL and PGWAKE_API_KEY, or write {"api_url": "http://127.0.0.1:8080", "api_key": "pgw_…"} to ${file}`;
  if (!apiUrl) throw new SettingsError(`no control API URL: ${hint}`);
  if (!apiKey) throw new SettingsError(`no API key: ${hint} (POST /v2/accounts gives one)`);
  try {
    const u = new URL(apiUrl);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error();
  } catch {
    throw new SettingsError(`the control API URL "${apiUrl}" (${env.PGWAKE_API_URL ? 'PGWAKE_API_URL' : file}) is not an http:// or https:// URL`);
  }
  if (!env.PGWAKE_API_KEY && fromFile.api_key !== undefined) {
    try {
      if ((statSync(file).mode & 0o077) !== 0) warn(`warning: ${file} holds an API key and other users can read it; run: chmod 600 ${file}`);
    } catch {
      // gone since we read it: nothing to warn about
    }
  }
  return {
    apiUrl: apiUrl.replace(/\/+$/, ''),
    apiKey,
    source: { apiUrl: env.PGWAKE_API_URL ? 'PGWAKE_API_URL' : file, apiKey: env.PGWAKE_API_KEY ? 'PGWAKE_API_KEY' : file },
  };
}
