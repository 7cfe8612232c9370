import { randomUUID } from 'node:crypto';
import type { Connection } from './connection.js';

/** The API's one error shape. */
export interface ApiErrorBody {
  code: string;
  message: string;
  details: unknown;
}

/** The API answered with an error. */
export class ApiCallError extends Error {
  constructor(readonly status: number, readonly error: ApiErrorBody) {
    super(error.message);
  }
}

/** The API could not be reached (or did not answer in time). */
export class UnreachableError extends Error {}

const NETWORK_RETRIES = [300, 1_000];
/** Waits longer than this for a rate limit are not worth making a person sit through. */
const MAX_RATE_LIMIT_WAIT_S = 10;
const RATE_LIMIT_RETRIES = 2;
/** A create provisions a compute: allow for it. */
const MUTATION_TIMEOUT_MS = 180_000;
const READ_TIMEOUT_MS = 30_000;

/**
 * The control API over HTTP, as the CLI uses it. Every mutating call carries
 * a fresh `Idempotency-Key`, kept across its retries: a create whose answer
 * was lost to the network is retried without making a second one.
 */
export class ControlApiClient {
  constructor(private readonly connection: Connection, private readonly userAgent: string) {}

  get<T>(path: string): Promise<T> {
    return this.#call<T>('GET', path);
  }

  post<T>(path: string, body?: unknown): Promise<T> {
    return this.#call<T>('POST', path, body);
  }

  delete<T>(path: string): Promise<T> {
    return this.#call<T>('DELETE', path);
  }

  async #call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = {
      authorization: `Bearer ${this.connection.apiKey}`,
      accept: 'application/json',
      'user-agent': this.userAgent,
    };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const mutating = method !== 'GET';
    if (mutating) headers['idempotency-key'] = randomUUID();
    const url = this.connection.apiUrl + path;

    let networkTries = 0;
    let rateLimitTries = 0;
    for (;;) {
      let res: Response;
      try {
        res = await fetch(url, {
          method,
          headers,
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: AbortSignal.timeout(mutating ? MUTATION_TIMEOUT_MS : READ_TIMEOUT_MS),
        });
      } catch (err) {
        const wait = NETWORK_RETRIES[networkTries++];
        if (wait === undefined) throw new UnreachableError(`cannot reach the control API at ${this.connection.apiUrl} (${this.connection.source.apiUrl}): ${networkReason(err)}`);
        await sleep(wait);
        continue;
      }
      const text = await res.text();
      const parsed = parseJson(text);
      if (res.ok) return (parsed ?? undefined) as T;
      const error = asErrorBody(parsed) ?? { code: `http_${res.status}`, message: `the control API answered ${res.status} ${res.statusText}`, details: text.slice(0, 500) || null };
      const retryAfter = Number(res.headers.get('retry-after'));
      if (res.status === 429 && rateLimitTries++ < RATE_LIMIT_RETRIES && retryAfter > 0 && retryAfter <= MAX_RATE_LIMIT_WAIT_S) {
        await sleep(retryAfter * 1000);
        continue;
      }
      throw new ApiCallError(res.status, error);
    }
  }
}

function parseJson(text: string): unknown {
  if (text === '') return null;
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

function asErrorBody(body: unknown): ApiErrorBody | null {
  const error = (body as { error?: Partial<ApiErrorBody> } | null)?.error;
  if (!error || typeof error.code !== 'string' || typeof error.message !== 'string') return null;
  return { code: error.code, message: error.message, details: error.details ?? null };
}

function networkReason(err: unknown): string {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e.name === 'TimeoutError') return 'no answer in time';
  return e.cause?.code ?? e.cause?.message ?? e.message ?? String(err);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
