import { randomUUID } from 'node:crypto';
import { ControlRequestError, type ControlRequest, type Unsubscribe } from './coordinator.js';
import type { RedisNames } from './redis-names.js';
import type { ScriptedRedis } from './redis-scripts.js';
import type { RedisSingleFlight } from './redis-single-flight.js';
import type { RedisSubscriptions } from './redis-subscriptions.js';

/** A control request on its way through Redis: who asked, and until when the answer is wanted. */
interface ControlEnvelope extends ControlRequest {
  id: string;
  replyTo: string;
  /** ms since epoch; a server drops a request found after it (its requester gave up). */
  deadline: number;
}

interface ControlReply {
  id: string;
  ok: boolean;
  message?: string;
  code?: ControlRequestError['code'];
}

/** A server says it is there this often; it counts as gone after three missed beats. */
const SERVER_BEAT_MS = 1_000;
const RESULT_TTL_MS = 60_000;
/** Clocks of two machines differ a little: a request is dropped only this long after its deadline. */
const DEADLINE_GRACE_MS = 1_000;
/** How long past its deadline a requester waits to learn why nobody answered (a Redis round trip or two). */
const VERDICT_GRACE_MS = 50;
/** BLPOP waits this long per round, so a stopping server notices within it. */
const POP_WAIT_SECONDS = 0.5;

/**
 * Control requests over Redis. A requester pushes the request onto one list and
 * waits for the reply on its own channel; a serving process (the autoscaler that
 * acts) pops requests with BLPOP on a connection of its own, runs the handler and
 * publishes the reply (also kept under a key for a requester whose subscription
 * blinked). Identical requests in flight share one push, across processes, through
 * the single flight: however many gateways ask to wake a db, one wake is asked for.
 */
export class RedisControlRequests {
  /** Requests of this process waiting for a reply: how to deliver it, and what was pushed (to push again). */
  #pending = new Map<string, { deliver: (reply: ControlReply) => void; payload: string }>();
  #serving: { stop(): void; done: Promise<void> } | undefined;
  #loops = new Set<Promise<void>>();
  /** Resolves once this process hears its replies. */
  readonly ready: Promise<void>;

  constructor(
    private readonly redis: ScriptedRedis,
    private readonly names: RedisNames,
    subscriptions: RedisSubscriptions,
    private readonly flights: RedisSingleFlight,
    private readonly processId: string,
    private readonly onError: (err: Error, what: string) => void,
  ) {
    this.ready = subscriptions.listen(names.controlReplies(processId), (message) => {
      const reply = JSON.parse(message) as ControlReply;
      this.#pending.get(reply.id)?.deliver(reply);
    }).ready;
  }

  async request(req: ControlRequest, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw timedOut(req, timeoutMs);
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          this.flights.run(`control:${req.action}:${req.dbId}`, () => this.#send(req, remaining)),
          // A little after the flight's own deadline, which tells timeout from no_autoscaler when Redis answers.
          new Promise<never>((_, reject) => (timer = setTimeout(() => reject(timedOut(req, timeoutMs)), remaining + VERDICT_GRACE_MS))),
        ]);
        return;
      } catch (err) {
        // A shared flight was bounded by another caller's shorter wait: ask again while this caller's time lasts.
        if (err instanceof ControlRequestError && err.code === 'timeout' && deadline - Date.now() > 20) continue;
        throw err;
      } finally {
        clearTimeout(timer);
      }
    }
  }

  async #send(req: ControlRequest, timeoutMs: number): Promise<void> {
    const envelope: ControlEnvelope = { id: randomUUID(), action: req.action, dbId: req.dbId, replyTo: this.processId, deadline: Date.now() + timeoutMs };
    const payload = JSON.stringify(envelope);
    let timer: NodeJS.Timeout | undefined;
    const reply = new Promise<ControlReply | null>((resolve) => {
      this.#pending.set(envelope.id, { deliver: resolve, payload });
      timer = setTimeout(() => resolve(null), timeoutMs);
    });
    try {
      await this.redis.rpush(this.names.controlQueue, payload);
      const answer = await reply;
      if (answer) {
        if (answer.ok) return;
        throw new ControlRequestError(answer.message ?? `${req.action} of ${req.dbId} failed`, answer.code ?? 'failed');
      }
      // No answer in time. Take the request back if nobody took it, so it is not acted on late.
      const untaken = (await this.redis.lrem(this.names.controlQueue, 1, payload)) > 0;
      if (untaken && !(await this.#anyServer())) throw new ControlRequestError('no autoscaler is running to act on the db', 'no_autoscaler');
      throw timedOut(req, timeoutMs);
    } finally {
      clearTimeout(timer);
      this.#pending.delete(envelope.id);
    }
  }

  async #anyServer(): Promise<boolean> {
    return (await this.redis.zcount(this.names.controlServers, Date.now(), '+inf')) > 0;
  }

  /**
   * After the subscription came back: a reply published meanwhile is read from its key;
   * a request with no reply is pushed again, since a Redis that restarted without its
   * data lost the queue (a wake twice is harmless: the second finds the db running).
   */
  async recheckPending(): Promise<void> {
    for (const [id, { deliver, payload }] of this.#pending) {
      const stored = await this.redis.get(this.names.controlResult(id));
      if (stored) deliver(JSON.parse(stored) as ControlReply);
      else await this.redis.multi().lrem(this.names.controlQueue, 1, payload).rpush(this.names.controlQueue, payload).exec();
    }
  }

  serve(handler: (req: ControlRequest) => Promise<void>): Unsubscribe {
    this.#serving?.stop();
    const blocking = this.redis.duplicate();
    blocking.on('error', (err: Error) => this.onError(err, 'control queue connection'));
    let stopped = false;
    const beat = () =>
      this.redis.zadd(this.names.controlServers, Date.now() + 3 * SERVER_BEAT_MS, this.processId).catch((err: Error) => this.onError(err, 'control server heartbeat'));
    void beat();
    const beating = setInterval(beat, SERVER_BEAT_MS);
    const acting = new Map<string, Promise<ControlReply>>();
    const act = (envelope: ControlEnvelope) => {
      // Identical requests popped while one runs (from requesters whose flights lapsed) share it.
      const key = `${envelope.action}:${envelope.dbId}`;
      let running = acting.get(key);
      if (!running) {
        running = handler({ action: envelope.action, dbId: envelope.dbId })
          .then(
            (): ControlReply => ({ id: '', ok: true }),
            (err: Error): ControlReply => ({ id: '', ok: false, message: err.message, code: err instanceof ControlRequestError ? err.code : 'failed' }),
          )
          .finally(() => acting.delete(key));
        acting.set(key, running);
      }
      void running.then((r) => this.#reply(envelope, { ...r, id: envelope.id }));
    };
    const loop = async () => {
      while (!stopped) {
        let popped: [string, string] | null;
        try {
          popped = await blocking.blpop(this.names.controlQueue, POP_WAIT_SECONDS);
        } catch (err) {
          if (stopped) break;
          this.onError(err as Error, 'pop control request');
          await new Promise((r) => setTimeout(r, 200));
          continue;
        }
        if (!popped) continue;
        if (stopped) {
          // Popped as this server stopped: back to the head of the queue for the next one.
          await this.redis.lpush(this.names.controlQueue, popped[1]).catch((err: Error) => this.onError(err, 'requeue control request'));
          break;
        }
        const envelope = JSON.parse(popped[1]) as ControlEnvelope;
        if (envelope.deadline + DEADLINE_GRACE_MS < Date.now()) continue;
        // A request pushed again after a reconnect (`recheckPending`) may have been served already: answered from its result, not run twice.
        const served = await this.redis.get(this.names.controlResult(envelope.id)).catch(() => null);
        if (served) {
          void this.#republish(envelope, served);
          continue;
        }
        act(envelope);
      }
      clearInterval(beating);
      await this.redis.zrem(this.names.controlServers, this.processId).catch(() => undefined);
      await Promise.allSettled([...acting.values()]);
      blocking.disconnect();
    };
    const done = loop();
    this.#loops.add(done);
    void done.finally(() => this.#loops.delete(done));
    const serving = {
      stop: () => {
        stopped = true;
      },
      done,
    };
    this.#serving = serving;
    return () => {
      serving.stop();
      if (this.#serving === serving) this.#serving = undefined;
    };
  }

  async #reply(envelope: ControlEnvelope, reply: ControlReply): Promise<void> {
    const json = JSON.stringify(reply);
    await this.redis
      .multi()
      .set(this.names.controlResult(envelope.id), json, 'PX', RESULT_TTL_MS)
      .publish(this.names.controlReplies(envelope.replyTo), json)
      .exec()
      .catch((err: Error) => this.onError(err, 'reply to control request'));
  }

  async #republish(envelope: ControlEnvelope, json: string): Promise<void> {
    await this.redis.publish(this.names.controlReplies(envelope.replyTo), json).catch((err: Error) => this.onError(err, 'reply to control request'));
  }

  /** Stops serving and waits for the requests being served to be answered. */
  async close(): Promise<void> {
    this.#serving?.stop();
    this.#serving = undefined;
    await Promise.allSettled([...this.#loops]);
    for (const { deliver } of this.#pending.values()) deliver({ id: '', ok: false, message: 'the coordinator closed', code: 'failed' });
  }
}

function timedOut(req: ControlRequest, timeoutMs: number): ControlRequestError {
  return new ControlRequestError(`${req.action} of ${req.dbId} did not finish within ${timeoutMs} ms`, 'timeout');
}
