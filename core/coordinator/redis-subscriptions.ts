import type { Redis } from 'ioredis';
import type { Unsubscribe } from './coordinator.js';

export interface Subscription {
  /** Resolves once Redis confirmed the subscription: messages published after it arrive. */
  ready: Promise<void>;
  stop: Unsubscribe;
}

/**
 * Channel listeners over the one connection in subscriber mode. A channel is
 * subscribed while it has a listener. After the connection came back (ioredis
 * subscribes again by itself) the reconnect listeners hear of it, once the
 * resubscription is through, so what they re-read cannot miss a later message.
 */
export class RedisSubscriptions {
  #channels = new Map<string, { listeners: Set<(message: string) => void>; ready: Promise<void> }>();
  #reconnectListeners = new Set<() => void>();
  #readyOnce = false;

  constructor(private readonly sub: Redis, private readonly onError: (err: Error, what: string) => void) {
    sub.on('message', (channel: string, message: string) => {
      for (const listener of this.#channels.get(channel)?.listeners ?? []) {
        try {
          listener(message);
        } catch (err) {
          onError(err as Error, `listener of ${channel}`);
        }
      }
    });
    // A link that is up already had its first 'ready': the next one is a reconnect.
    this.#readyOnce = sub.status === 'ready';
    sub.on('ready', () => {
      if (!this.#readyOnce) {
        this.#readyOnce = true;
        return;
      }
      // 'ready' is emitted before ioredis sends the SUBSCRIBEs again; a PING queued after them answers once they are done.
      setImmediate(() => {
        sub.ping().then(
          () => {
            for (const listener of this.#reconnectListeners) {
              try {
                listener();
              } catch (err) {
                onError(err as Error, 'reconnect listener');
              }
            }
          },
          (err: Error) => onError(err, 'ping after reconnect'),
        );
      });
    });
  }

  listen(channel: string, listener: (message: string) => void): Subscription {
    let entry = this.#channels.get(channel);
    if (!entry) {
      const ready = this.sub.subscribe(channel).then(() => undefined);
      ready.catch((err: Error) => this.onError(err, `subscribe ${channel}`));
      this.#channels.set(channel, (entry = { listeners: new Set(), ready }));
    }
    const subscribed = entry;
    subscribed.listeners.add(listener);
    return {
      ready: subscribed.ready,
      stop: () => {
        if (!subscribed.listeners.delete(listener) || subscribed.listeners.size > 0 || this.#channels.get(channel) !== subscribed) return;
        this.#channels.delete(channel);
        this.sub.unsubscribe(channel).catch((err: Error) => this.onError(err, `unsubscribe ${channel}`));
      },
    };
  }

  onReconnect(listener: () => void): Unsubscribe {
    this.#reconnectListeners.add(listener);
    return () => this.#reconnectListeners.delete(listener);
  }

  clear(): void {
    this.#channels.clear();
    this.#reconnectListeners.clear();
  }
}
