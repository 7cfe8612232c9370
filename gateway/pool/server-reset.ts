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

const word = (w: string): number => (w.charCodeAt(0) << 16) | (w.charCodeAt(1) << 8) | w.charCodeAt(2);
const SET = word('set');
const LIS = word('lis');
const DEC = word('dec');
const PRE = word('pre');
const LOA = word('loa');
const LOC = word('loc');
const DIS = word('dis');
const DEA = word('dea');
const TEM = word('tem');

/**
 * Whether the SQL text `buf[start, end)` holds, in any case, the first three letters of a
 * word every match of `leavesSessionState` and `dropsAllStatements` contains (set, listen,
 * declare, prepare, load, lock, discard, deallocate, temp). Most queries do not, and this
 * byte scan costs a fraction of decoding them and running the regular expressions.
 */
export function mayTouchSession(buf: Buffer, start: number, end: number): boolean {
  for (let i = start; i + 2 < end; i++) {
    // `| 0x20` lower-cases ASCII letters and maps no other byte onto one.
    const c = buf[i]! | 0x20;
    if (c !== 0x73 && c !== 0x6c && c !== 0x64 && c !== 0x70 && c !== 0x74) continue; // s l d p t
    const w = (c << 16) | ((buf[i + 1]! | 0x20) << 8) | (buf[i + 2]! | 0x20);
    if (w === SET || w === LIS || w === DEC || w === PRE || w === LOA || w === LOC || w === DIS || w === DEA || w === TEM) return true;
  }
  return false;
}

/** `LEAVES_SESSION_STATE | DROPS_ALL_STATEMENTS` bits for SQL text; `parsed`: the text of a Parse (its answer is remembered). */
export function sessionVerdict(sql: string, parsed: boolean): number {
  return ((parsed ? parsedLeavesSessionState(sql) : leavesSessionState(sql)) ? LEAVES_SESSION_STATE : 0) | (dropsAllStatements(sql) ? DROPS_ALL_STATEMENTS : 0);
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

export const LEAVES_SESSION_STATE = 1;
export const DROPS_ALL_STATEMENTS = 2;

/**
 * What one client's latest unnamed Parse says, by its bytes. Drivers send the same
 * few statement texts again and again (values travel in Bind; pgbench -M extended,
 * node-postgres with values), so a byte comparison with the last text replaces
 * decoding it and two regular expressions (~1 µs a transaction under -M extended).
 */
export class UnnamedParseVerdicts {
  /** The Parse's content after its empty name: query text, its terminator, parameter types. */
  #content: Buffer | null = null;
  #verdict = 0;

  /** `LEAVES_SESSION_STATE | DROPS_ALL_STATEMENTS` bits for the Parse whose content is `buf[start, end)`. Throws when it is malformed. */
  of(buf: Buffer, start: number, end: number): number {
    const last = this.#content;
    if (last !== null && sameBytes(last, buf, start, end)) return this.#verdict;
    const queryEnd = buf.indexOf(0, start);
    if (queryEnd < 0 || queryEnd >= end) throw new Error('malformed Parse message');
    const sql = buf.toString('utf8', start, queryEnd);
    this.#verdict = sessionVerdict(sql, true);
    this.#content = Buffer.from(buf.subarray(start, end));
    return this.#verdict;
  }
}

/** `a` equals `buf[start, end)`: a plain loop for statement-sized texts (a native compare costs more to call). */
function sameBytes(a: Buffer, buf: Buffer, start: number, end: number): boolean {
  const n = a.length;
  if (n !== end - start) return false;
  if (n > 256) return buf.compare(a, 0, n, start, end) === 0;
  for (let i = 0; i < n; i++) if (a[i] !== buf[start + i]) return false;
  return true;
}
