import type { PoolServer } from './pool-server.js';
import { identifier, literal } from './startup-params.js';

/**
 * What a session-mode client built up on its server that a move to a new writer
 * must carry (DESIGN §4 Freeze): the settings it SET, its prepared statements
 * (protocol-level and SQL PREPARE) and the channels it LISTENs on. Read from the
 * old writer while the session is idle under a freeze, replayed on the new one.
 * Temp tables, cursors WITH HOLD and advisory locks cannot move (README).
 */
export interface SessionState {
  settings: [string, string][];
  statements: { name: string; sql: string; types: number[]; fromSql: boolean }[];
  channels: string[];
}

const CAPTURE_SQL = [
  `SELECT 's'::text, name::text, pg_catalog.current_setting(name)::text, NULL::text, NULL::text FROM pg_catalog.pg_settings`,
  `  WHERE source = 'session' AND name NOT IN ('session_authorization', 'transaction_isolation', 'transaction_read_only', 'transaction_deferrable')`,
  `UNION ALL SELECT 'p', name::text, statement, parameter_types::oid[]::text, from_sql::text FROM pg_catalog.pg_prepared_statements`,
  `UNION ALL SELECT 'l', c::text, NULL, NULL, NULL FROM pg_catalog.pg_listening_channels() c`,
].join('\n');

export async function captureSession(server: PoolServer): Promise<SessionState> {
  const r = await server.query(CAPTURE_SQL);
  if (r.error) throw new Error(`could not read the session's state: ${r.error}`);
  const state: SessionState = { settings: [], statements: [], channels: [] };
  for (const [kind, a, b, c, d] of r.rows) {
    if (kind === 's') state.settings.push([a!, b!]);
    else if (kind === 'p') state.statements.push({ name: a!, sql: b!, types: parseOids(c ?? '{}'), fromSql: d === 'true' });
    else if (kind === 'l') state.channels.push(a!);
  }
  return state;
}

/** Replays `state` on a fresh server connection of the same role and database. Throws if any of it fails. */
export async function replaySession(server: PoolServer, state: SessionState): Promise<void> {
  const sql: string[] = [];
  if (state.settings.length > 0) sql.push(`SELECT ${state.settings.map(([n, v]) => `pg_catalog.set_config(${literal(n)}, ${literal(v)}, false)`).join(', ')}`);
  // One query string may have prepared several statements: run each text once.
  for (const text of new Set(state.statements.filter((s) => s.fromSql).map((s) => s.sql))) sql.push(text.replace(/;\s*$/, ''));
  for (const c of state.channels) sql.push(`LISTEN ${identifier(c)}`);
  if (sql.length > 0) {
    const r = await server.query(sql.join(';\n'));
    if (r.error) throw new Error(`could not restore the session's settings: ${r.error}`);
  }
  const parses = state.statements.filter((s) => !s.fromSql).map((s) => parseMessage(s.name, s.sql, s.types));
  if (parses.length > 0) {
    const r = await server.prepare(parses);
    if (r.error) throw new Error(`could not prepare the session's statements again: ${r.error}`);
  }
}

function parseOids(text: string): number[] {
  const inner = text.replace(/^\{|\}$/g, '');
  return inner === '' ? [] : inner.split(',').map(Number);
}

export function parseMessage(name: string, sql: string, types: number[]): Buffer {
  const head = Buffer.from(`${name}\0${sql}\0`, 'utf8');
  const out = Buffer.allocUnsafe(5 + head.length + 2 + 4 * types.length);
  out[0] = 0x50; // 'P'
  out.writeInt32BE(out.length - 1, 1);
  head.copy(out, 5);
  let at = 5 + head.length;
  out.writeInt16BE(types.length, at);
  at += 2;
  for (const t of types) {
    out.writeUInt32BE(t, at);
    at += 4;
  }
  return out;
}
