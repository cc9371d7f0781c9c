import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { Logger } from 'nestjs-pino';
import { loadGatewayEnvironment } from './config/load-gateway-environment';
import { GatewayModule } from './gateway.module';

const BODY_LIMIT_BYTES = 64 * 1024;

/**
 * Builds the simulator as main.ts runs it; tests start it from here with `env` over the process
 * environment. It does not listen: the caller picks the port.
 */
export async function createGatewayApp(
  env: Record<string, string> = {},
): Promise<NestFastifyApplication> {
  const config = loadGatewayEnvironment({ ...process.env, ...env });
  const app = await NestFactory.create<NestFastifyApplication>(
    GatewayModule.forRoot(config),
    new FastifyAdapter({ bodyLimit: BODY_LIMIT_BYTES }),
    { bufferLogs: true },
  );
  app.useLogger(app.get(Logger));
  return app;
}
