/**
 * Where API keys live, decided once for the server and the `keys` command
 * alike: Redis when one is configured (several servers share the keys),
 * else the JSON keys file.
 */
import { Redis } from 'ioredis';
import type { Config } from '../config.ts';
import { FileKeyStore, RedisKeyStore, type KeyStore } from './api-keys.ts';
import { FallbackKeyStore } from './key-fallback.ts';

/** A store and the way to release what it holds. */
export interface OpenedKeyStore {
  store: KeyStore;
  close(): Promise<void>;
}

/** Options of {@link createKeyStore}. */
export interface KeyStoreOptions {
  /** The process's Redis client, when shared state is in Redis (its owner closes it). */
  redis?: Redis | undefined;
  /**
   * Keep recently verified keys working through a store outage (a server
   * answering requests wants this; a command changing keys does not).
   */
  outageGrace?: boolean;
}

/**
 * The one key-store factory: keys in Redis when `options.redis` is given,
 * else in the file `keysFile`. `close()` releases the file store; a Redis
 * client stays open for its owner.
 */
export function createKeyStore(config: Pick<Config, 'keysFile' | 'redisPrefix'>, options: KeyStoreOptions = {}): OpenedKeyStore {
  if (options.redis) {
    const redisStore = new RedisKeyStore(options.redis, config.redisPrefix);
    return { store: options.outageGrace ? new FallbackKeyStore(redisStore) : redisStore, close: () => Promise.resolve() };
  }
  const store = new FileKeyStore(config.keysFile);
  return { store, close: () => store.close() };
}

/**
 * The configured store for a one-off command: Redis when `redisUrl` is set (a
 * new client, closed by `close()`), else the file `keysFile`.
 */
export function openKeyStore(config: Pick<Config, 'keysFile' | 'redisUrl' | 'redisPrefix'>): OpenedKeyStore {
  if (config.redisUrl === '') return createKeyStore(config);
  const redis = new Redis(config.redisUrl, { lazyConnect: false, maxRetriesPerRequest: 1 });
  // Connection errors reach the callers as rejected commands; without a
  // listener ioredis would also print each one.
  redis.on('error', () => undefined);
  const { store } = createKeyStore(config, { redis });
  return {
    store,
    close: async () => {
      try {
        await redis.quit();
      } catch {
        redis.disconnect();
      }
    },
  };
}
