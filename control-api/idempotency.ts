import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { RoleContext, StoredResponse } from '../core/index.js';
import { callerOf } from './caller.js';
import { controlTimeoutMs } from './control-requests.js';
import { ApiError } from './errors.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The Idempotency-Key this request claimed: its response is recorded for retries. */
    idempotencyKey: string | null;
  }
}

const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
/** Visible ASCII, as Stripe accepts (a UUID fits easily). */
const KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;
/** How long a first result is replayed. */
export const IDEMPOTENCY_TTL_MS = 24 * 3600 * 1000;
/** How long a retry waits for a first request that is still running before it gets a 409. */
const WAIT_FOR_FIRST_MS = 30_000;
const POLL_MS = 50;
const PURGE_INTERVAL_MS = 10 * 60 * 1000;

/**
 * `Idempotency-Key` on mutating calls (as Stripe does): the first request with
 * a key runs and its response (status and body) is recorded, per account, for
 * a day; a retry with the same key and the same request gets that response
 * again with `Idempotent-Replayed: true`; the same key on a different request
 * is a 422. A retry that arrives while the first still runs waits for it.
 * Requests refused before their handler (auth, rate limit, validation) record
 * nothing, so they can be retried as they are.
 */
export class IdempotencyKeys {
  #purge: NodeJS.Timeout;

  constructor(private readonly ctx: RoleContext) {
    this.#purge = setInterval(() => {
      ctx.catalog.idempotency.purgeExpired().catch((err: Error) => ctx.logger.warn({ err: err.message }, 'could not purge expired idempotency keys'));
    }, PURGE_INTERVAL_MS);
    this.#purge.unref();
  }

  /** Adds the hooks to the (encapsulated, API-key) instance. */
  apply(app: FastifyInstance): void {
    app.decorateRequest('idempotencyKey', null);
    app.addHook('preHandler', (request, reply) => this.#claim(request, reply));
    app.addHook('onSend', async (request, reply, payload) => {
      await this.#record(request, reply, payload);
      return payload;
    });
  }

  stop(): void {
    clearInterval(this.#purge);
  }

  /** The longest a first request may run before a retry may take its key over (its process died). */
  #lockMs(): number {
    return 2 * controlTimeoutMs(this.ctx, 'provision') + 30_000;
  }

  async #claim(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | void> {
    if (!MUTATING.has(request.method)) return;
    const key = request.headers['idempotency-key'];
    if (key === undefined) return;
    if (typeof key !== 'string' || !KEY_PATTERN.test(key)) {
      const problem = 'must be 1–255 visible ASCII characters (a UUID, for example), sent once';
      throw new ApiError(400, 'invalid_request', `idempotency-key: ${problem}`, { fields: [{ in: 'headers', field: 'idempotency-key', problem }] });
    }
    const account = callerOf(request).account.id;
    const fingerprint = fingerprintOf(request);
    const deadline = Date.now() + WAIT_FOR_FIRST_MS;
    for (;;) {
      const claim = await this.ctx.catalog.idempotency.claim(account, key, fingerprint, { lockMs: this.#lockMs(), ttlMs: IDEMPOTENCY_TTL_MS });
      switch (claim.kind) {
        case 'claimed':
          request.idempotencyKey = key;
          return;
        case 'done':
          request.log.info({ idempotency_replayed: true }, 'replaying the first response for this Idempotency-Key');
          return this.#replay(reply, claim.response);
        case 'mismatch':
          throw new ApiError(422, 'idempotency_key_reused', 'this Idempotency-Key was used for a different request (method, path or body); use a new key for a new request', {
            idempotency_key: key,
          });
        case 'running':
          if (Date.now() >= deadline) {
            reply.header('retry-after', 1);
            throw new ApiError(409, 'idempotency_key_in_use', 'a request with this Idempotency-Key is still running; retry shortly to get its result', { idempotency_key: key });
          }
          await new Promise((r) => setTimeout(r, POLL_MS));
      }
    }
  }

  #replay(reply: FastifyReply, stored: StoredResponse): FastifyReply {
    reply.code(stored.status).header('idempotent-replayed', 'true');
    if (stored.contentType) reply.header('content-type', stored.contentType);
    return reply.send(stored.bodySealed === null ? undefined : this.ctx.secrets.open(stored.bodySealed));
  }

  /** Stores the response before it leaves, so a retry that comes right after finds it. */
  async #record(request: FastifyRequest, reply: FastifyReply, payload: unknown): Promise<void> {
    const key = request.idempotencyKey;
    if (!key) return;
    request.idempotencyKey = null;
    const account = callerOf(request).account.id;
    const body = typeof payload === 'string' ? payload : Buffer.isBuffer(payload) ? payload.toString('utf8') : null;
    const contentType = reply.getHeader('content-type');
    try {
      await this.ctx.catalog.idempotency.finish(account, key, {
        status: reply.statusCode,
        contentType: typeof contentType === 'string' ? contentType : null,
        // Responses carry tenant passwords and API keys: sealed at rest like the passwords themselves.
        bodySealed: body === null ? null : this.ctx.secrets.seal(body),
      });
    } catch (err) {
      request.log.warn({ err: (err as Error).message }, 'could not record the response for its Idempotency-Key; a retry will wait, then run again');
    }
  }
}

/** What makes two requests "the same": method, path with query, and the body with keys in a fixed order. */
function fingerprintOf(request: FastifyRequest): Buffer {
  return createHash('sha256').update(`${request.method}\n${request.url}\n${canonicalJson(request.body ?? null)}`).digest();
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}
