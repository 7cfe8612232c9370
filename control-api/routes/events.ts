import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { Gauge } from 'prom-client';
import type { RoleContext } from '../../core/index.js';
import { callerOf } from '../caller.js';
import { ApiError } from '../errors.js';
import { EventStream } from '../event-stream.js';
import { BEARER, errorResponses } from '../schemas.js';

/** Every open event stream, so stop() can end them (a server does not close while streams run). */
export class OpenEventStreams {
  readonly #streams = new Set<EventStream>();
  readonly #gauge: Gauge;

  constructor(ctx: RoleContext) {
    const name = 'pgwake_control_api_event_streams';
    this.#gauge = (ctx.metrics.getSingleMetric(name) as Gauge | undefined) ?? new Gauge({ name, help: 'Open Server-Sent Events streams of GET /v2/events', registers: [ctx.metrics] });
  }

  add(s: EventStream): void {
    this.#streams.add(s);
    this.#gauge.inc();
  }

  remove(s: EventStream): void {
    if (this.#streams.delete(s)) this.#gauge.dec();
  }

  get size(): number {
    return this.#streams.size;
  }

  closeAll(): void {
    for (const s of [...this.#streams]) s.close();
  }
}

const EventsHeaders = Type.Object({
  'last-event-id': Type.Optional(Type.String({ pattern: '^[0-9]{1,15}$', description: 'Resume after this event id (the `id:` of the last event received)' })),
});

/** GET /v2/events: the account's tenant and db changes as Server-Sent Events. */
export async function eventRoutes(app: FastifyInstance, { ctx, streams, heartbeatMs }: { ctx: RoleContext; streams: OpenEventStreams; heartbeatMs: number }): Promise<void> {
  app.get<{ Headers: { 'last-event-id'?: string } }>(
    '/v2/events',
    {
      schema: {
        tags: ['events'],
        summary: "Server-Sent Events of the account's tenant and db changes. Without Last-Event-ID the stream starts at now; with it, it replays what came after.",
        security: BEARER,
        headers: EventsHeaders,
        produces: ['text/event-stream'],
        response: { 200: { description: 'text/event-stream: `id:` catalog event id, `event:` type (db.created, db.running, tenant.deleted, …), `data:` the event as JSON', type: 'string' }, ...errorResponses(400, 401) },
      },
    },
    async (request, reply) => {
      const caller = callerOf(request);
      const header = request.headers['last-event-id'];
      const after = header === undefined ? await ctx.catalog.events.latestId(caller.account.id) : Number(header);
      if (!Number.isSafeInteger(after)) throw new ApiError(400, 'invalid_request', 'last-event-id: must be an event id');
      reply.hijack();
      const stream = new EventStream(ctx, caller.account.id, after, reply.raw, request.log, (s) => streams.remove(s));
      streams.add(stream);
      stream.start(heartbeatMs);
    },
  );
}
