import { ApiCallError } from './api-client.js';
import type { Connection } from './connection.js';
import { EXIT } from './exit-codes.js';
import type { Terminal } from './terminal.js';

interface FieldProblem {
  in?: string;
  field: string;
  problem: string;
}

/**
 * Prints an API error for people (or, with --json, the API's error body as it
 * came) on stderr, and returns the exit code its status calls for.
 */
export function reportApiError(term: Terminal, err: ApiCallError, o: { json: boolean; connection: Connection; flags?: Record<string, string> }): number {
  if (o.json) term.err(JSON.stringify({ error: err.error }, null, 2));
  else {
    const fields = (err.error.details as { fields?: FieldProblem[] } | null)?.fields;
    if (Array.isArray(fields) && fields.length > 0) {
      // One line per field, named as the command line names it (--suspend-timeout, not suspend_timeout_seconds).
      term.err('pgwake: the API refused the request:');
      for (const f of fields) term.err(`  ${o.flags?.[f.field] ?? f.field}: ${f.problem}`);
    } else term.err(`pgwake: ${err.error.message}`);
    if (err.status === 401) term.err(`  The API key comes from ${o.connection.source.apiKey}; revoked keys, keys past a rotation's grace period and keys of deleted accounts stop working.`);
  }
  if (err.status === 401) return EXIT.unauthorized;
  if (err.status === 404) return EXIT.notFound;
  return EXIT.apiError;
}
