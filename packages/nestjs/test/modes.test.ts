// The module in each Redis mode against real servers: two app instances
// (two replicas) with the module's Socket.IO adapter; a client on one
// joins a room, a client on the other broadcasts to it; the app's Redis
// client and a BullMQ round trip on the contract's prefixes; the scaling
// and metrics endpoints; readiness that reports an unreachable database;
// and a shutdown that leaves nothing open.

import 'reflect-metadata';
import { Module, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ConnectedSocket, MessageBody, SubscribeMessage, WebSocketGateway, WebSocketServer } from '@nestjs/websockets';
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Server, Socket } from 'socket.io';
import { io, type Socket as ClientSocket } from 'socket.io-client';
import { REDIS, ScalingIoAdapter, ScalingModule, ScalingQueues, type RedisClient } from '../src';
import { Servers, contractEnv } from './servers';

const SCALING_FILE = resolve(__dirname, '../../../../out/growth/scaling.json');

@WebSocketGateway()
class RoomGateway {
  @WebSocketServer() server!: Server;

  @SubscribeMessage('join')
  join(@ConnectedSocket() socket: Socket, @MessageBody() room: string): string {
    void socket.join(room);
    return 'joined';
  }

  @SubscribeMessage('broadcast')
  broadcast(@MessageBody() message: { room: string; data: unknown }): string {
    this.server.to(message.room).emit('broadcast', message.data);
    return 'sent';
  }
}

async function start(env: Record<string, string>): Promise<INestApplication> {
  @Module({ imports: [ScalingModule.forRoot({ env, scalingFile: SCALING_FILE, drainMs: 0 })], providers: [RoomGateway] })
  class AppModule {}
  const app = await NestFactory.create(AppModule, { logger: false });
  const adapter = new ScalingIoAdapter(app);
  await adapter.connect();
  app.useWebSocketAdapter(adapter);
  await app.listen(0, '127.0.0.1');
  return app;
}

async function client(app: INestApplication): Promise<ClientSocket> {
  const socket = io(await app.getUrl(), { transports: ['websocket'], reconnection: false, timeout: 5000 });
  await new Promise<void>((ok, fail) => {
    socket.once('connect', () => ok());
    socket.once('connect_error', fail);
  });
  return socket;
}

function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  return Promise.race([p, new Promise<T>((_, no) => setTimeout(() => no(new Error(`${what}: not within ${ms} ms`)), ms).unref())]);
}

const modes: Array<{ mode: string; setUp: (s: Servers) => Promise<Record<string, string>> }> = [
  {
    mode: 'standalone',
    setUp: async (s) => {
      await s.standalone(27301);
      return { REDIS_MODE: 'standalone', REDIS_URL: 'redis://127.0.0.1:27301', BULLMQ_PREFIX: 'bull', SOCKETIO_ADAPTER: 'redis' };
    },
  },
  {
    mode: 'sentinel',
    setUp: async (s) => {
      await s.sentinel(27311, 27312, 27313, 'sikka');
      return {
        REDIS_MODE: 'sentinel',
        REDIS_SENTINELS: '127.0.0.1:27313',
        REDIS_SENTINEL_NAME: 'sikka',
        BULLMQ_PREFIX: 'bull',
        SOCKETIO_ADAPTER: 'redis',
      };
    },
  },
  {
    mode: 'cluster',
    setUp: async (s) => {
      // A cluster node also binds its port + 10000 (the bus): 3xxxx below
      // Linux's ephemeral range (32768 on), where a client's connection
      // could hold it first.
      await s.cluster([22321, 22322, 22323]);
      return {
        REDIS_MODE: 'cluster',
        REDIS_CLUSTER_NODES: '127.0.0.1:22321,127.0.0.1:22322',
        BULLMQ_PREFIX: '{bull}',
        BULLMQ_QUEUES: 'push={push}',
        SOCKETIO_ADAPTER: 'sharded',
      };
    },
  },
  {
    // A cluster for the cache and pub/sub, the queues on a standalone
    // queue Redis of their own (queue_redis): no hash tags there.
    mode: 'cluster with a queue Redis',
    setUp: async (s) => {
      await s.cluster([22331, 22332, 22333]);
      await s.standalone(22334);
      return {
        REDIS_MODE: 'cluster',
        REDIS_CLUSTER_NODES: '127.0.0.1:22331,127.0.0.1:22332',
        BULLMQ_REDIS_URL: 'redis://127.0.0.1:22334',
        BULLMQ_PREFIX: 'bull',
        BULLMQ_QUEUES: 'push=bull',
        SOCKETIO_ADAPTER: 'sharded',
      };
    },
  },
];

/** Where the contract puts BullMQ's keys: the queue Redis's port, or none (the phase's Redis). */
const queuePort: Record<string, number | undefined> = { 'cluster with a queue Redis': 22334 };

for (const { mode, setUp } of modes) {
  describe(`${mode} Redis`, { timeout: 120_000 }, () => {
    const servers = new Servers();
    const apps: INestApplication[] = [];
    const sockets: ClientSocket[] = [];

    before(async () => {
      const env = contractEnv(await setUp(servers));
      apps.push(await start(env), await start(env));
    });

    after(async () => {
      for (const s of sockets) s.disconnect();
      for (const app of apps) await app.close();
      servers.stop();
    });

    test('a broadcast from one replica reaches a room member on the other', async () => {
      const [a, b] = [await client(apps[0]), await client(apps[1])];
      sockets.push(a, b);
      assert.equal(await a.timeout(5000).emitWithAck('join', 'room-1'), 'joined');
      const received = new Promise((ok) => a.once('broadcast', ok));
      // The adapter's subscriptions settle before the first publish.
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(await b.timeout(5000).emitWithAck('broadcast', { room: 'room-1', data: { n: 42 } }), 'sent');
      assert.deepEqual(await within(5000, 'the broadcast', received), { n: 42 });
    });

    test('the metrics count the open WebSocket connections', async () => {
      const text = await (await fetch(`${await apps[0].getUrl()}/metrics`)).text();
      assert.match(text, /^scaleplan_app_websocket_connections 1$/m);
      assert.match(text, /^process_cpu_seconds_total /m);
    });

    test("the app's Redis client and a BullMQ round trip on the queue's prefix", async () => {
      const redis = apps[0].get<RedisClient>(REDIS);
      assert.equal(await redis.set('sikka:modes-test', mode), 'OK');
      assert.equal(await redis.get('sikka:modes-test'), mode);
      const queues = apps[0].get(ScalingQueues);
      const done = new Promise((ok) => queues.worker<{ n: number }, number>('push', async (job) => job.data.n * 2).on('completed', (_job, value) => ok(value)));
      await queues.queue('push').add('double', { n: 21 });
      assert.equal(await within(15_000, 'the job', done), 42);
      const text = await (await fetch(`${await apps[0].getUrl()}/metrics`)).text();
      assert.match(text, /bullmq_job_count\{queue="push"/);
      assert.match(text, /scaleplan_queue_oldest_job_age_seconds\{queue="push"\} 0/);
      // The queue's keys are on the Redis the contract names for BullMQ,
      // and, with a queue Redis, none of them on the phase's Redis.
      const port = queuePort[mode];
      if (port !== undefined) {
        assert.ok(servers.keys(port, 'bull:push:*').length > 0, 'no queue key on the queue Redis');
        assert.equal((await redis.keys('bull:push:*')).length, 0, 'queue keys on the phase Redis');
      }
    });

    test('the scaling endpoints serve the phase, and readiness names what is down', async () => {
      const url = await apps[1].getUrl();
      const phase = (await (await fetch(`${url}/scaling/phase`)).json()) as { name: string };
      assert.equal(phase.name, 'growth');
      const status = (await (await fetch(`${url}/scaling/status`)).json()) as { websocket: { open: number; per_replica: number } };
      assert.equal(status.websocket.open, 1);
      assert.equal(status.websocket.per_replica, 2000);
      assert.equal((await fetch(`${url}/health/live`)).status, 200);
      // The contract's database is on a closed port here.
      const ready = await fetch(`${url}/health/ready`);
      assert.equal(ready.status, 503);
      const body = (await ready.json()) as Record<string, string>;
      assert.equal(body.status, 'unready');
      assert.equal(body.redis, 'ok');
      assert.notEqual(body.postgres_write, 'ok');
    });
  });
}
