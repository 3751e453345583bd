// The reference backend: the contract from the environment, the phase's
// scaling.json from $SCALEPLAN_SCALING_FILE, the port from $PORT.

import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { ScalingIoAdapter } from '@scaleplan/nestjs';
import { AppModule } from './app.module';

async function main(): Promise<void> {
  const app = await NestFactory.create(AppModule);
  const adapter = new ScalingIoAdapter(app);
  await adapter.connect();
  app.useWebSocketAdapter(adapter);
  app.enableShutdownHooks();
  await app.listen(Number(process.env.PORT ?? 3000), process.env.HOST ?? '0.0.0.0');
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
