// The module's endpoints: liveness and readiness, the scaling endpoints,
// and the metrics Prometheus scrapes.

import { Controller, Get, Header, HttpCode, Inject, ServiceUnavailableException, type BeforeApplicationShutdown } from '@nestjs/common';
import { Client, type Pool } from 'pg';
import type { Pools, RedisClient } from './clients';
import { ScalingMetrics } from './metrics';
import { ScalingService, type ScalingModuleOptions } from './scaling.service';
import { OPTIONS, POOLS, REDIS } from './tokens';

const within = <T>(ms: number, what: string, p: Promise<T>): Promise<T> =>
  Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms).unref())]);

@Controller('health')
export class HealthController implements BeforeApplicationShutdown {
  private stopping = false;

  constructor(
    @Inject(POOLS) private readonly pools: Pools,
    @Inject(REDIS) private readonly redis: RedisClient,
    @Inject(OPTIONS) private readonly options: ScalingModuleOptions,
  ) {}

  /**
   * Shutting down: unready, then a wait (`drainMs`, default 5 s: at least
   * the edge's check interval times its failures to mark a server down)
   * while the edge stops sending, before Nest closes the sockets and the
   * HTTP server.
   */
  async beforeApplicationShutdown(): Promise<void> {
    this.stopping = true;
    const ms = this.options.drainMs ?? 5000;
    if (ms > 0) await new Promise((r) => setTimeout(r, ms));
  }

  @Get('live')
  live(): { status: 'ok' } {
    return { status: 'ok' };
  }

  /** Ready when PostgreSQL (both endpoints) and Redis answer. */
  @Get('ready')
  async ready(): Promise<Record<string, string>> {
    // Each database endpoint on a connection of its own: behind the
    // request traffic in the pool, a busy replica would go unready
    // exactly when it is busy.
    const probe = async (pool: Pool): Promise<void> => {
      const client = new Client({ ...pool.options, connectionTimeoutMillis: 2000 });
      client.on('error', () => undefined);
      try {
        await client.connect();
        await client.query('SELECT 1');
      } finally {
        await client.end().catch(() => undefined);
      }
    };
    const checks: Record<string, Promise<unknown>> = {
      postgres_write: within(2500, 'postgres write', probe(this.pools.write)),
      postgres_read: within(2500, 'postgres read', probe(this.pools.read)),
      redis: within(2000, 'redis', this.redis.ping()),
    };
    // Every outcome taken at once: a check awaited after another would
    // reject before anything listens.
    const results = await Promise.all(
      Object.entries(checks).map(([name, check]) =>
        check.then(
          () => [name, 'ok'],
          (e: Error) => [name, e.message],
        ),
      ),
    );
    const out: Record<string, string> = { status: 'ok', ...Object.fromEntries(results) };
    const failed = Object.entries(out).some(([k, v]) => k !== 'status' && v !== 'ok');
    if (this.stopping || failed) {
      throw new ServiceUnavailableException({ ...out, status: this.stopping ? 'stopping' : 'unready' });
    }
    return out;
  }
}

@Controller('scaling')
export class ScalingController {
  constructor(private readonly scaling: ScalingService) {}

  @Get('phase')
  phase(): ReturnType<ScalingService['phase']> {
    return this.scaling.phase();
  }

  @Get('capacity')
  capacity(): ReturnType<ScalingService['capacity']> {
    return this.scaling.capacity();
  }

  @Get('status')
  status(): ReturnType<ScalingService['status']> {
    return this.scaling.status();
  }
}

@Controller('metrics')
export class MetricsController {
  constructor(private readonly metrics: ScalingMetrics) {}

  @Get()
  @HttpCode(200)
  @Header('content-type', 'text/plain; version=0.0.4')
  text(): Promise<string> {
    return this.metrics.text();
  }
}
