// The module's endpoints: liveness and readiness, the scaling endpoints,
// and the metrics Prometheus scrapes.

import { Controller, Get, Header, HttpCode, Inject, ServiceUnavailableException, type BeforeApplicationShutdown } from '@nestjs/common';
import type { Pools } from './clients';
import type { RedisClient } from './clients';
import { ScalingMetrics } from './metrics';
import { ScalingService } from './scaling.service';
import { POOLS, REDIS } from './tokens';

const within = <T>(ms: number, what: string, p: Promise<T>): Promise<T> =>
  Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms).unref())]);

@Controller('health')
export class HealthController implements BeforeApplicationShutdown {
  private stopping = false;

  constructor(@Inject(POOLS) private readonly pools: Pools, @Inject(REDIS) private readonly redis: RedisClient) {}

  /** Shutting down: unready first, so the edge stops sending before the sockets drain. */
  beforeApplicationShutdown(): void {
    this.stopping = true;
  }

  @Get('live')
  live(): { status: 'ok' } {
    return { status: 'ok' };
  }

  /** Ready when PostgreSQL (both endpoints) and Redis answer. */
  @Get('ready')
  async ready(): Promise<Record<string, string>> {
    const checks: Record<string, Promise<unknown>> = {
      postgres_write: within(2000, 'postgres write', this.pools.write.query('SELECT 1')),
      postgres_read: within(2000, 'postgres read', this.pools.read.query('SELECT 1')),
      redis: within(2000, 'redis', this.redis.ping()),
    };
    const out: Record<string, string> = { status: 'ok' };
    for (const [name, check] of Object.entries(checks)) {
      out[name] = await check.then(
        () => 'ok',
        (e: Error) => e.message,
      );
    }
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
