/**
 * Between two clients a server connection is reset the way PgBouncer's
 * `server_reset_query` (DISCARD ALL) would, but keeping prepared statements:
 * the gateway owns those and re-uses them across clients (transaction mode's
 * contract). A reset costs a round trip, so it runs only after a transaction
 * that may have left session state (a SET, LISTEN, temp table, advisory lock,
 * cursor WITH HOLD …), as far as its SQL shows.
 */
export const SERVER_RESET_QUERY = [
  'RESET ALL',
  'CLOSE ALL',
  'UNLISTEN *',
  'SELECT pg_catalog.pg_advisory_unlock_all()',
  'DISCARD TEMP',
  'DISCARD SEQUENCES',
  // SQL-level PREPAREs are the client's; protocol-level ones are the gateway's and stay.
  "DO $$DECLARE s record; BEGIN FOR s IN SELECT name FROM pg_catalog.pg_prepared_statements WHERE from_sql LOOP EXECUTE pg_catalog.format('DEALLOCATE %I', s.name); END LOOP; END$$",
].join('; ');

/**
 * At the start of any statement: a session-level SET (not SET LOCAL / TRANSACTION /
 * CONSTRAINTS / SESSION CHARACTERISTICS), RESET, LISTEN, DECLARE, PREPARE, LOAD,
 * DISCARD, DEALLOCATE, LOCK; anywhere: session advisory locks (not the _xact_ kind),
 * set_config, temp tables. One pass of one regular expression: this runs for every
 * query in transaction mode.
 */
const SESSION_STATE =
  /(?:^|;)[\s(]*(?:set(?!\s+(?:local|transaction|constraints|session\s+characteristics)\b)|reset|listen|declare|prepare|load|discard|deallocate|lock)\b|pg_(?:try_)?advisory_lock|set_config|\btemp(?:orary)?\b/i;

/** Whether SQL text may leave session state behind. Errs on the side of a reset. */
export function leavesSessionState(sql: string): boolean {
  return SESSION_STATE.test(sql);
}

/** A simple query that is exactly DISCARD ALL or DEALLOCATE ALL: every prepared statement of the session goes. */
export function dropsAllStatements(sql: string): boolean {
  return /^\s*(discard\s+all|deallocate\s+(prepare\s+)?all)\s*;?\s*$/i.test(sql);
}

/** Statement texts seen in Parse messages, with what `leavesSessionState` said of them. */
const parsedVerdicts = new Map<string, boolean>();
const PARSED_VERDICTS_MAX = 1024;

/**
 * `leavesSessionState` for the text of a Parse. Those repeat (values travel in Bind),
 * so the answer is remembered: the regular expression was ~1% of the gateway's CPU
 * under pgbench -M extended. Simple queries carry their values inline and rarely repeat: not cached.
 */
export function parsedLeavesSessionState(sql: string): boolean {
  let verdict = parsedVerdicts.get(sql);
  if (verdict === undefined) {
    verdict = SESSION_STATE.test(sql);
    if (parsedVerdicts.size >= PARSED_VERDICTS_MAX) parsedVerdicts.clear();
    parsedVerdicts.set(sql, verdict);
  }
  return verdict;
}
