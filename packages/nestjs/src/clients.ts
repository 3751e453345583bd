// The drivers, built from the contract the way each needs it.

import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import { Pool, type PoolConfig } from 'pg';
import type { Contract, RedisContract } from './contract';

/** The write pool (the proxy's write endpoint) and the read pool (standbys). */
export interface Pools {
  write: Pool;
  read: Pool;
}

export function createPools(contract: Contract, options: PoolConfig = {}): Pools {
  const config = (connectionString: string): PoolConfig => ({
    connectionString,
    connectionTimeoutMillis: 5000,
    // No statement_timeout or options: PgBouncer refuses startup
    // parameters it does not know.
    ...options,
    ...(contract.postgres.ssl ? { ssl: { rejectUnauthorized: true } } : {}),
  });
  return { write: new Pool(config(contract.postgres.writeUrl)), read: new Pool(config(contract.postgres.readUrl)) };
}

/**
 * What a client is for: `app` (commands that should fail rather than hang),
 * `bullmq` (BullMQ requires maxRetriesPerRequest: null), `subscriber` (the
 * Socket.IO adapter's pub/sub connection, also without a retry limit).
 */
export type RedisRole = 'app' | 'bullmq' | 'subscriber';

export type RedisClient = Redis | Cluster;

const retry = (times: number): number => Math.min(100 * times, 2000);

/** A demoted master answers READONLY: reconnect (Sentinel then finds the new one) and resend. */
const readonlyReconnect = (err: Error): 2 | false => (err.message.startsWith('READONLY') ? 2 : false);

/** One ioredis client (or cluster) in the contract's mode. */
export function createRedis(redis: RedisContract, role: RedisRole = 'app', extra: Partial<ClusterOptions> = {}): RedisClient {
  const common: RedisOptions = {
    password: redis.password,
    connectTimeout: 5000,
    maxRetriesPerRequest: role === 'app' ? 5 : null,
    reconnectOnError: readonlyReconnect,
    ...(redis.tls ? { tls: {} } : {}),
  };
  switch (redis.mode) {
    case 'standalone':
      // The URL has no credentials: the options carry them.
      return new Redis(redis.url, { ...common, retryStrategy: retry });
    case 'sentinel':
      return new Redis({
        ...common,
        sentinels: redis.sentinels,
        name: redis.name,
        role: 'master',
        sentinelPassword: redis.password,
        retryStrategy: retry,
        sentinelRetryStrategy: retry,
        ...(redis.tls ? { enableTLSForSentinelMode: true, sentinelTLS: {} } : {}),
      });
    case 'cluster':
      return new Cluster(redis.nodes, {
        redisOptions: common,
        clusterRetryStrategy: retry,
        slotsRefreshTimeout: 2000,
        retryDelayOnFailover: 200,
        retryDelayOnClusterDown: 200,
        // With TLS the nodes' certificates name the configuration endpoint,
        // not the addresses the cluster announces (ElastiCache): keep the
        // name the client was given.
        ...(redis.tls ? { dnsLookup: (address: string, callback: (err: Error | null, address: string) => void) => callback(null, address) } : {}),
        ...extra,
      });
  }
}

/** Waits until `client` is ready, at most `ms`. */
export async function redisReady(client: RedisClient, ms = 10_000): Promise<void> {
  if (client.status === 'ready') return;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`Redis not ready within ${ms} ms`));
    }, ms);
    const onReady = (): void => {
      cleanup();
      resolve();
    };
    const cleanup = (): void => {
      clearTimeout(timer);
      client.off('ready', onReady);
    };
    client.on('ready', onReady);
  });
}

/** quit(), then disconnect(): a quit that cannot finish must not keep the process alive. */
export async function closeRedis(client: RedisClient): Promise<void> {
  if (client.status !== 'end') {
    await Promise.race([client.quit().catch(() => undefined), new Promise((r) => setTimeout(r, 3000))]);
  }
  client.disconnect();
}
