// BullMQ with the contract's connection and each queue's prefix (its own
// hash tag in cluster mode), exported to /metrics as the monitoring reads
// them, closed on shutdown.

import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { MetricsTime, Queue, Worker, type Processor, type WorkerOptions } from 'bullmq';
import { closeRedis, createRedis, type RedisClient } from './clients';
import { type Contract, queuePrefix } from './contract';
import { ScalingMetrics } from './metrics';
import { CONTRACT } from './tokens';

@Injectable()
export class ScalingQueues implements OnApplicationShutdown {
  private readonly queues = new Map<string, Queue>();
  private readonly workers: Worker[] = [];
  private readonly connections: RedisClient[] = [];

  constructor(@Inject(CONTRACT) private readonly contract: Contract, private readonly metrics: ScalingMetrics) {}

  /** A connection to the Redis that holds the queues: BULLMQ_REDIS_URL's, else the phase's. */
  private connection(): RedisClient {
    const client = createRedis(this.contract.bullmq?.redis ?? this.contract.redis, 'bullmq');
    this.connections.push(client);
    return client;
  }

  /** The queue `name` (one per name), its job counts and oldest job's age on /metrics. */
  queue(name: string): Queue {
    let queue = this.queues.get(name);
    if (!queue) {
      // The prefix first: a phase without queues refuses before a connection opens.
      const prefix = queuePrefix(this.contract, name);
      queue = new Queue(name, { connection: this.connection(), prefix });
      const q = queue;
      this.metrics.addText(async () => {
        const [waiting] = await q.getJobs(['waiting'], 0, 0, true);
        this.metrics.oldestJobAge.set({ queue: name }, waiting ? (Date.now() - waiting.timestamp) / 1000 : 0);
        return q.exportPrometheusMetrics();
      });
      this.queues.set(name, queue);
    }
    return queue;
  }

  /** A worker on the queue `name`, with the same connection and prefix. */
  worker<T = unknown, R = unknown>(name: string, processor: Processor<T, R>, options: Partial<WorkerOptions> = {}): Worker<T, R> {
    // The queue too: its counts reach /metrics from a replica that only
    // works on it.
    this.queue(name);
    const prefix = queuePrefix(this.contract, name);
    const worker = new Worker<T, R>(name, processor, {
      // BullMQ's completed and failed counts, which the throughput alerts read.
      metrics: { maxDataPoints: MetricsTime.ONE_WEEK },
      ...options,
      connection: this.connection(),
      prefix,
    });
    this.workers.push(worker as Worker);
    return worker;
  }

  async onApplicationShutdown(): Promise<void> {
    await this.close();
  }

  /** Workers first (each finishes its job in hand), then the queues and connections; idempotent. */
  async close(): Promise<void> {
    await Promise.all(this.workers.splice(0).map((w) => w.close()));
    await Promise.all([...this.queues.values()].map((q) => q.close()));
    this.queues.clear();
    await Promise.all(this.connections.splice(0).map((c) => closeRedis(c)));
  }
}
