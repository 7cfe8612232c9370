import { createHash } from 'node:crypto';
import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify';
import { Counter } from 'prom-client';
import type { Config, Registry } from '../core/index.js';
import { ApiError } from './errors.js';

/** What a limit counts by. */
export type LimitScope = 'address' | 'api_key' | 'signup_address';

interface Limit {
  scope: LimitScope;
  max: number;
  windowSeconds: number;
  /** The bucket a request counts in; undefined: the limit does not apply to it. */
  bucket(request: FastifyRequest): string | undefined;
  /** Set X-RateLimit-* on answers under the limit too, so clients can pace themselves. */
  announce: boolean;
}

/** Routes a load balancer or Prometheus polls: never limited. */
const OPERATIONS = new Set(['/healthz', '/metrics']);

const SENTENCE: Record<LimitScope, string> = {
  address: 'too many requests from this address',
  api_key: 'too many requests with this API key',
  signup_address: 'too many sign-ups from this address',
};

/**
 * Request limits by client address and by API key, counted by @fastify/rate-limit's
 * store (in memory, per process). Each limit is an onRequest hook placed where
 * it belongs; the one the request breaks answers 429 with `Retry-After` in the
 * API's error shape.
 */
export class RateLimits {
  readonly #rejected: Counter<'scope'>;

  private constructor(private readonly app: FastifyInstance, private readonly config: Config, metrics: Registry) {
    const name = 'pgwake_http_rate_limited_total';
    this.#rejected =
      (metrics.getSingleMetric(name) as Counter<'scope'> | undefined) ??
      new Counter({ name, help: 'Control API requests refused with 429, by the limit they broke', labelNames: ['scope'] as const, registers: [metrics] });
  }

  /** Registers the plugin without its global hook: the limits below are placed by hand. */
  static async install(app: FastifyInstance, config: Config, metrics: Registry): Promise<RateLimits> {
    await app.register(rateLimit, { global: false });
    return new RateLimits(app, config, metrics);
  }

  /** Every request but the operations routes, by client address (with `PGWAKE_TRUST_PROXY`, the forwarded one). */
  byAddress(): onRequestHookHandler {
    return this.#hook({
      scope: 'address',
      max: this.config.rateLimitPerAddress,
      windowSeconds: this.config.rateLimitWindowSeconds,
      bucket: (r) => (OPERATIONS.has(r.routeOptions.url ?? '') ? undefined : r.ip),
      announce: false,
    });
  }

  /**
   * By the presented key, before it is checked: a flood on one key costs no
   * catalog lookups. The bucket is the key's hash, so no secret is kept in memory.
   */
  byApiKey(): onRequestHookHandler {
    return this.#hook({
      scope: 'api_key',
      max: this.config.rateLimitPerKey,
      windowSeconds: this.config.rateLimitWindowSeconds,
      bucket: (r) => {
        const match = /^Bearer\s+(\S+)\s*$/i.exec(r.headers.authorization ?? '');
        return match ? createHash('sha256').update(match[1]!).digest('base64url') : undefined;
      },
      announce: true,
    });
  }

  /** Sign-ups per address per hour: accounts are cheap to make and each brings its own key limit. */
  signUpsByAddress(): onRequestHookHandler {
    return this.#hook({ scope: 'signup_address', max: this.config.signupRateLimitPerAddress, windowSeconds: 3600, bucket: (r) => r.ip, announce: false });
  }

  #hook(limit: Limit): onRequestHookHandler {
    if (limit.max === 0) return async () => undefined;
    const check = this.app.createRateLimit({
      max: limit.max,
      timeWindow: limit.windowSeconds * 1000,
      keyGenerator: (r: FastifyRequest) => limit.bucket(r) ?? '',
    });
    return async (request: FastifyRequest, reply: FastifyReply) => {
      if (limit.bucket(request) === undefined) return;
      const state = await check(request);
      if (state.isAllowed) return;
      if (limit.announce || state.isExceeded) {
        reply.header('x-ratelimit-limit', state.max);
        reply.header('x-ratelimit-remaining', state.remaining);
        reply.header('x-ratelimit-reset', state.ttlInSeconds);
      }
      if (!state.isExceeded) return;
      this.#rejected.inc({ scope: limit.scope });
      reply.header('retry-after', state.ttlInSeconds);
      throw new ApiError(429, 'rate_limited', `${SENTENCE[limit.scope]}: at most ${limit.max} per ${limit.windowSeconds} s; retry in ${state.ttlInSeconds} s`, {
        scope: limit.scope,
        limit: limit.max,
        window_seconds: limit.windowSeconds,
        retry_after_seconds: state.ttlInSeconds,
      });
    };
  }
}
