// Socket.IO across replicas: an IoAdapter whose servers use the Redis
// adapter the contract names, and count their connections for the
// WebSocket metric the capacity alerts read.
//
// `redis` (standalone, Sentinel): createAdapter over PUBLISH, on ioredis.
// `sharded` (cluster): createShardedAdapter over Redis 7's sharded pub/sub,
// which scales with the shards (a classic PUBLISH reaches every node). The
// adapter's sharded mode (8.3) speaks node-redis's cluster client, not
// ioredis's, so its two connections are node-redis ones.

import { Logger, type INestApplicationContext } from '@nestjs/common';
import { IoAdapter } from '@nestjs/platform-socket.io';
import { createAdapter, createShardedAdapter } from '@socket.io/redis-adapter';
import { createCluster } from 'redis';
import type { Server, ServerOptions } from 'socket.io';
import { closeRedis, createRedis, type RedisClient } from './clients';
import type { Contract, RedisContract } from './contract';
import { ScalingMetrics } from './metrics';
import { CONTRACT } from './tokens';

type NodeRedisCluster = ReturnType<typeof createCluster>;

function nodeRedisCluster(redis: RedisContract & { mode: 'cluster' }): NodeRedisCluster {
  const scheme = redis.tls ? 'rediss' : 'redis';
  return createCluster({
    rootNodes: redis.nodes.map(({ host, port }) => ({ url: `${scheme}://${host}:${port}` })),
    // Nodes found through the cluster take these defaults, not the root
    // URLs' scheme: TLS must be here too.
    defaults: { password: redis.password, socket: { connectTimeout: 5000, ...(redis.tls ? { tls: true as const } : {}) } },
  });
}

export class ScalingIoAdapter extends IoAdapter {
  private readonly ioredis: RedisClient[] = [];
  private readonly nodeRedis: NodeRedisCluster[] = [];
  private readonly contract: Contract;
  private readonly metrics: ScalingMetrics;
  private readonly logger = new Logger('ScalingIoAdapter');

  constructor(app: INestApplicationContext) {
    super(app);
    this.contract = app.get<Contract>(CONTRACT);
    this.metrics = app.get(ScalingMetrics);
  }

  /** Connects the sharded adapter's clients; call before app.listen() (node-redis connects explicitly). */
  async connect(): Promise<void> {
    const redis = this.contract.redis;
    if (this.contract.socketioAdapter !== 'sharded' || redis.mode !== 'cluster') return;
    const pub = nodeRedisCluster(redis);
    const sub = nodeRedisCluster(redis);
    pub.on('error', () => undefined);
    sub.on('error', () => undefined);
    // The adapter neither awaits nor catches its per-room SSUBSCRIBE and
    // SUNSUBSCRIBE: one that fails (a shard failing over, the app shutting
    // down while a room empties) would end the process with an unhandled
    // rejection. A failed subscribe is logged (that room's broadcasts from
    // other replicas are lost until it rejoins); a failed unsubscribe only
    // leaves a subscription behind.
    const subscribe = sub.sSubscribe.bind(sub);
    const unsubscribe = sub.sUnsubscribe.bind(sub);
    sub.sSubscribe = ((...args: Parameters<typeof subscribe>) =>
      subscribe(...args).catch((e: Error) => this.logger.error(`SSUBSCRIBE ${String(args[0])}: ${e.message}`))) as typeof subscribe;
    sub.sUnsubscribe = ((...args: Parameters<typeof unsubscribe>) => unsubscribe(...args).catch(() => undefined)) as typeof unsubscribe;
    await Promise.all([pub.connect(), sub.connect()]);
    this.nodeRedis.push(pub, sub);
  }

  createIOServer(port: number, options?: ServerOptions): Server {
    const server: Server = super.createIOServer(port, options);
    const redis = this.contract.redis;
    const key = `${redis.keyPrefix}socket.io`;
    if (this.contract.socketioAdapter === 'sharded') {
      const [pub, sub] = this.nodeRedis;
      if (!pub || !sub) throw new Error('ScalingIoAdapter: call connect() before the app listens');
      server.adapter(createShardedAdapter(pub, sub, { channelPrefix: key }));
    } else {
      // The publisher fails a broadcast rather than queueing it through an
      // outage (replayed stale afterwards); the subscriber reconnects for
      // as long as it takes.
      const pub = createRedis(redis, 'app');
      const sub = createRedis(redis, 'subscriber');
      for (const [client, name] of [[pub, 'publisher'], [sub, 'subscriber']] as const) {
        client.on('error', (e: Error) => this.logger.warn(`Redis ${name}: ${e.message}`));
      }
      this.ioredis.push(pub, sub);
      server.adapter(createAdapter(pub, sub, { key }));
    }
    // Engine.IO's connections, whatever namespace the gateways use.
    server.engine.on('connection', (socket: { once: (event: string, f: () => void) => void }) => {
      this.metrics.websockets.inc();
      socket.once('close', () => this.metrics.websockets.dec());
    });
    return server;
  }

  async close(server: Server): Promise<void> {
    await super.close(server);
    await Promise.all(this.ioredis.splice(0).map((c) => closeRedis(c)));
    await Promise.all(this.nodeRedis.splice(0).map((c) => c.close().catch(() => undefined)));
  }
}
