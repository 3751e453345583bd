// ScalingModule: everything the app needs from a scaleplan deployment,
// from the contract's variables. The AppModule imports
// `ScalingModule.forRoot()`; main.ts uses `ScalingIoAdapter` and
// `enableShutdownHooks()`.

import { Global, Inject, Module, type DynamicModule, type OnApplicationShutdown } from '@nestjs/common';
import { closeRedis, createPools, createRedis, type Pools, type RedisClient } from './clients';
import { readContract, scrubPgEnvironment, type Contract } from './contract';
import { HealthController, MetricsController, ScalingController } from './controllers';
import { ScalingMetrics } from './metrics';
import { ScalingQueues } from './queues';
import { ScalingService, type ScalingModuleOptions } from './scaling.service';
import { CONTRACT, OPTIONS, POOLS, REDIS } from './tokens';

/** The connections close after the workers have finished their jobs in hand (Nest runs a module's shutdown hooks together). */
class Closer implements OnApplicationShutdown {
  constructor(
    @Inject(POOLS) private readonly pools: Pools,
    @Inject(REDIS) private readonly redis: RedisClient,
    @Inject(ScalingQueues) private readonly queues: ScalingQueues,
  ) {}

  async onApplicationShutdown(): Promise<void> {
    await this.queues.close();
    await Promise.all([this.pools.write.end(), this.pools.read.end(), closeRedis(this.redis)]);
  }
}

@Global()
@Module({})
export class ScalingModule {
  static forRoot(options: ScalingModuleOptions = {}): DynamicModule {
    return {
      module: ScalingModule,
      controllers: [HealthController, ScalingController, MetricsController],
      providers: [
        { provide: OPTIONS, useValue: options },
        {
          provide: CONTRACT,
          useFactory: (): Contract => {
            if (!options.env) scrubPgEnvironment();
            return readContract(options.env ?? process.env);
          },
        },
        {
          provide: POOLS,
          inject: [CONTRACT],
          useFactory: (contract: Contract): Pools => {
            const pools = createPools(contract, { max: 10 });
            // An idle client's error must not end the process.
            pools.write.on('error', () => undefined);
            pools.read.on('error', () => undefined);
            return pools;
          },
        },
        {
          provide: REDIS,
          inject: [CONTRACT],
          useFactory: (contract: Contract): RedisClient => {
            const client = createRedis(contract.redis, 'app');
            client.on('error', () => undefined);
            return client;
          },
        },
        ScalingMetrics,
        ScalingService,
        ScalingQueues,
        Closer,
      ],
      exports: [CONTRACT, POOLS, REDIS, ScalingMetrics, ScalingService, ScalingQueues],
    };
  }
}
