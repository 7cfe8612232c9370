/**
 * What a client is told when the gateway ends its connection: an ErrorResponse with
 * a SQLSTATE (DESIGN §4), and the outcome the metrics count it under.
 */
export type ConnectionOutcome =
  | 'relayed'
  | 'cancel_request'
  | 'protocol_error'
  | 'startup_timeout'
  | 'tls_required'
  | 'address_not_allowed'
  | 'banned'
  | 'too_many_connections'
  | 'auth_failed'
  | 'db_not_found'
  | 'compute_unavailable'
  | 'compute_error'
  | 'client_gone'
  | 'shutting_down'
  | 'catalog_unavailable'
  | 'internal_error';

export const SQLSTATE = {
  protocolViolation: '08P01',
  connectionFailure: '08006',
  invalidAuthorization: '28000',
  invalidPassword: '28P01',
  idleSessionTimeout: '57P05',
  invalidCatalogName: '3D000',
  cannotConnectNow: '57P03',
  adminShutdown: '57P01',
  featureNotSupported: '0A000',
  internalError: 'XX000',
  tooManyConnections: '53300',
  programLimitExceeded: '54000',
  connectionDoesNotExist: '08003',
} as const;

/** An error the gateway sends to the client as FATAL before closing. */
export class GatewayError extends Error {
  constructor(
    readonly sqlstate: string,
    message: string,
    readonly outcome: ConnectionOutcome,
    readonly detail?: string,
    readonly hint?: string,
  ) {
    super(message);
  }
}

export const protocolError = (message: string, detail?: string): GatewayError => new GatewayError(SQLSTATE.protocolViolation, message, 'protocol_error', detail);

/** The one answer to an unknown user and a wrong password alike, so role names cannot be probed. */
export const authFailed = (user: string): GatewayError => new GatewayError(SQLSTATE.invalidPassword, `password authentication failed for user "${user}"`, 'auth_failed');

/** The client closed or reset its side; nothing can be sent any more. */
export class ClientGone extends Error {
  constructor(message = 'client closed the connection') {
    super(message);
  }
}

export interface ErrorFields {
  severity?: 'FATAL' | 'ERROR';
  sqlstate: string;
  message: string;
  detail?: string | undefined;
  hint?: string | undefined;
}

/** ErrorResponse ('E'): severity, SQLSTATE and text fields, each a tagged C string. */
export function errorResponse(e: ErrorFields): Buffer {
  const severity = e.severity ?? 'FATAL';
  const fields: [string, string][] = [
    ['S', severity],
    ['V', severity],
    ['C', e.sqlstate],
    ['M', e.message],
  ];
  if (e.detail) fields.push(['D', e.detail]);
  if (e.hint) fields.push(['H', e.hint]);
  const parts = fields.map(([tag, value]) => Buffer.concat([Buffer.from(tag, 'latin1'), Buffer.from(value, 'utf8'), Buffer.from([0])]));
  const body = Buffer.concat([...parts, Buffer.from([0])]);
  const head = Buffer.alloc(5);
  head.write('E', 0, 'latin1');
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

export function errorResponseOf(err: GatewayError): Buffer {
  return errorResponse({ sqlstate: err.sqlstate, message: err.message, detail: err.detail, hint: err.hint });
}

/** Errors of a lost or refused connection (node's socket codes, SQLSTATE classes 08 and 57P; pg's own carry no code). */
const UNAVAILABLE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', '57P01', '57P02', '57P03']);

/**
 * 57P03 for a connection the gateway could not route because the catalog Postgres
 * is down or restarting (compute connection errors are wrapped before they get here):
 * the client may retry, and nothing is wrong with its request.
 */
export function catalogUnavailable(err: unknown): GatewayError | null {
  const e = err as { code?: unknown; message?: unknown } | null;
  const code = typeof e?.code === 'string' ? e.code : '';
  const message = typeof e?.message === 'string' ? e.message : '';
  const lost = UNAVAILABLE_CODES.has(code) || code.startsWith('08') || /^Connection terminated|^timeout exceeded when trying to connect/.test(message);
  return lost ? new GatewayError(SQLSTATE.cannotConnectNow, 'the gateway cannot look up the database now: its catalog is unavailable', 'catalog_unavailable', undefined, 'try again shortly; open sessions are not affected') : null;
}
