/** Why a server connection could not be opened, and whether trying again can help. */
export class ComputeConnectError extends Error {
  constructor(
    message: string,
    /** Refused, timed out, reset before login, or "starting up": a just-woken compute may accept the next try. */
    readonly transient: boolean,
    /** SQLSTATE when the compute itself refused with an ErrorResponse. */
    readonly sqlstate?: string,
    /** That ErrorResponse as the compute sent it, to pass on unchanged where it concerns the client (53300). */
    readonly errorResponse?: Buffer,
  ) {
    super(message);
  }
}

const TRANSIENT_SOCKET_ERRORS = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE', 'EAI_AGAIN']);
/** cannot_connect_now: "the database system is starting up". Never 53300 (too many connections) or 28xxx (auth): retrying those only hides them. */
const TRANSIENT_SQLSTATES = new Set(['57P03']);

export function isTransientSocketError(err: unknown): boolean {
  return TRANSIENT_SOCKET_ERRORS.has((err as NodeJS.ErrnoException).code ?? '');
}

export function isTransientSqlState(code: string | undefined): boolean {
  return code !== undefined && TRANSIENT_SQLSTATES.has(code);
}

export interface RetryPolicy {
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

/** Five tries over about a second: enough for a compute that just said it is ready, not so long that a dead one hides. */
export const CONNECT_RETRY: RetryPolicy = { attempts: 6, baseDelayMs: 25, maxDelayMs: 500 };

/** Exponential backoff with jitter, so fifty clients of one compute do not retry in step. */
export function backoffMs(policy: RetryPolicy, attempt: number): number {
  const exp = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** attempt);
  return exp / 2 + Math.random() * (exp / 2);
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
