import type { Redis } from 'ioredis';

/**
 * The compare-and-act steps the Redis coordinator needs to be atomic, as Lua run by
 * Redis itself (EVALSHA through ioredis' defineCommand). A lease's value is
 * `<epoch>:<holder>`, so renewing and releasing check both.
 */
const SCRIPTS = {
  /**
   * KEYS: lease, epoch counter. ARGV: holder, ttl ms. Returns the epoch, or nil when
   * another holder has the lease. A missing counter starts at Redis' clock in ms, so
   * epochs keep growing even after Redis lost its data (they only need to be larger).
   */
  pgwakeLeaseAcquire: {
    numberOfKeys: 2,
    lua: `
local cur = redis.call('GET', KEYS[1])
if cur then
  local sep = string.find(cur, ':', 1, true)
  if string.sub(cur, sep + 1) == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return tonumber(string.sub(cur, 1, sep - 1))
  end
  return false
end
if redis.call('EXISTS', KEYS[2]) == 0 then
  local t = redis.call('TIME')
  redis.call('SET', KEYS[2], t[1] .. string.format('%03d', math.floor(tonumber(t[2]) / 1000)))
end
local epoch = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], epoch .. ':' .. ARGV[1], 'PX', ARGV[2])
return epoch`,
  },
  /** KEYS: key. ARGV: expected value, ttl ms. Extends the key only while it still holds the value: 1, else 0. */
  pgwakeRenewIfHeld: {
    numberOfKeys: 1,
    lua: `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0`,
  },
  /** KEYS: key. ARGV: expected value. Deletes the key only while it still holds the value. */
  pgwakeDeleteIfHeld: {
    numberOfKeys: 1,
    lua: `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`,
  },
  /**
   * KEYS: flight lock, flight result. ARGV: token, outcome, result ttl ms, channel, message.
   * Stores the outcome, tells the waiters, then frees the lock, in one step: a waiter
   * that sees the lock gone and no result knows the holder died.
   */
  pgwakeFlightFinish: {
    numberOfKeys: 2,
    lua: `
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
redis.call('PUBLISH', ARGV[4], ARGV[5])
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
end
return 1`,
  },
  /** KEYS: cancel key's owner entry. ARGV: channel prefix, key. Publishes the key to its owner's channel: receivers, or 0. */
  pgwakeCancelForward: {
    numberOfKeys: 1,
    lua: `
local owner = redis.call('GET', KEYS[1])
if not owner then
  return 0
end
return redis.call('PUBLISH', ARGV[1] .. owner, ARGV[2])`,
  },
} as const;

/** A connection that knows the scripts above as commands. */
export interface ScriptedRedis extends Redis {
  pgwakeLeaseAcquire(lease: string, epochs: string, holder: string, ttlMs: number): Promise<number | null>;
  pgwakeRenewIfHeld(key: string, value: string, ttlMs: number): Promise<number>;
  pgwakeDeleteIfHeld(key: string, value: string): Promise<number>;
  pgwakeFlightFinish(lock: string, result: string, token: string, outcome: string, resultTtlMs: number, channel: string, message: string): Promise<number>;
  pgwakeCancelForward(owner: string, channelPrefix: string, key: string): Promise<number>;
}

export function withScripts(redis: Redis): ScriptedRedis {
  for (const [name, script] of Object.entries(SCRIPTS)) redis.defineCommand(name, script);
  return redis as ScriptedRedis;
}
