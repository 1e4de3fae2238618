/**
 * Redis connections for shared state (cache, spend, rate limits, keys).
 * Commands fail fast while Redis is away (no offline queue, one retry, a
 * short command timeout) so a request never waits on a dead Redis; the
 * client keeps reconnecting in the background and callers see it come back.
 */
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';

/** Options every Candela Redis client uses. */
export function redisOptions(extra: RedisOptions = {}): RedisOptions {
  return {
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    commandTimeout: 1000,
    connectTimeout: 2000,
    // Keep trying forever, but never faster than every 100 ms nor slower than every 2 s.
    retryStrategy: (times) => Math.min(100 * times, 2000),
    ...extra,
  };
}

/** A client for `url`; connection errors are logged once per outage, not per retry. */
export function connectRedis(url: string, logger: Logger, name: string, extra: RedisOptions = {}): Redis {
  const client = new Redis(url, redisOptions({ connectionName: `candela-${name}`, ...extra }));
  let down = false;
  client.on('error', (err: Error) => {
    if (!down) logger.warn({ redis: name, err: err.message }, 'redis unavailable');
    down = true;
  });
  client.on('ready', () => {
    if (down) logger.info({ redis: name }, 'redis is back');
    down = false;
  });
  return client;
}

/** `redis://user:secret@host` → `redis://user:***@host`, for logs. */
export function redactRedisUrl(url: string): string {
  return url.replace(/^(rediss?:\/\/[^:/@]*:)[^@]*@/, '$1***@');
}
