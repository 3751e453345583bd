// The work one request does, as the phase's spec models it: its database
// queries (reads through the read pool, writes through the write pool, in
// the spec's read ratio) and its Redis operations. A fractional figure is
// met on average: 2.4 queries are 2 or 3, 3 with probability 0.4.

import { Inject, Injectable, type OnModuleInit } from '@nestjs/common';
import { CONTRACT, POOLS, REDIS, ScalingService, type Contract, type Pools, type RedisClient } from '@scaleplan/nestjs';

function count(mean: number): number {
  const whole = Math.floor(mean);
  return whole + (Math.random() < mean - whole ? 1 : 0);
}

@Injectable()
export class WorkService implements OnModuleInit {
  constructor(
    @Inject(CONTRACT) private readonly contract: Contract,
    @Inject(POOLS) private readonly pools: Pools,
    @Inject(REDIS) private readonly redis: RedisClient,
    private readonly scaling: ScalingService,
  ) {}

  /** The table the work reads and writes, created once by whichever replica starts first. */
  async onModuleInit(): Promise<void> {
    const client = await this.pools.write.connect();
    try {
      await client.query('BEGIN');
      // A transaction-scoped lock: PgBouncer's transaction pooling keeps it.
      await client.query('SELECT pg_advisory_xact_lock(7340021)');
      await client.query(
        'CREATE TABLE IF NOT EXISTS example_items (id bigserial PRIMARY KEY, user_id int NOT NULL, body text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())',
      );
      await client.query('CREATE INDEX IF NOT EXISTS example_items_user ON example_items (user_id, id DESC)');
      await client.query('COMMIT');
    } catch (e) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw e;
    } finally {
      client.release();
    }
  }

  async request(user: number): Promise<{ reads: number; writes: number; redis: number }> {
    const w = this.scaling.file.workload;
    const queries = count(w.db_queries_per_request);
    let reads = 0;
    let writes = 0;
    for (let i = 0; i < queries; i += 1) {
      if (Math.random() < w.read_ratio) {
        await this.pools.read.query('SELECT id, body FROM example_items WHERE user_id = $1 ORDER BY id DESC LIMIT 10', [user]);
        reads += 1;
      } else {
        await this.pools.write.query('INSERT INTO example_items (user_id, body) VALUES ($1, $2)', [user, `item of ${user}`]);
        writes += 1;
      }
    }
    const ops = count(w.redis_ops_per_request);
    // One key per user (a cluster spreads them over the slots); reads and
    // writes alternate.
    const key = `${this.prefix()}user:${user}:seen`;
    for (let i = 0; i < ops; i += 1) {
      if (i % 2 === 0) await this.redis.incr(key);
      else await this.redis.get(key);
    }
    if (ops > 0) await this.redis.expire(key, 3600);
    return { reads, writes, redis: ops + (ops > 0 ? 1 : 0) };
  }

  /** The contract's prefix for the app's own keys. */
  private prefix(): string {
    return this.contract.redis.keyPrefix;
  }
}
