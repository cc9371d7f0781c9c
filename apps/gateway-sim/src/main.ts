import 'reflect-metadata';
import { loadGatewayEnvironment } from './config/load-gateway-environment';
import { createGatewayApp } from './gateway.factory';

async function bootstrap(): Promise<void> {
  // Fail fast, before any connection is made.
  const given = Boolean(process.env.GATEWAY_WEBHOOK_SECRET);
  const config = loadGatewayEnvironment(process.env);
  if (!given) {
    // Made up for this run (there is no default secret): the API must be told it.
    process.env.GATEWAY_WEBHOOK_SECRET = config.GATEWAY_WEBHOOK_SECRET;
    console.log(
      `GATEWAY_WEBHOOK_SECRET is not set; generated one for this run: ${config.GATEWAY_WEBHOOK_SECRET}`,
    );
  }
  const app = await createGatewayApp();
  app.enableShutdownHooks();
  await app.listen({ port: config.GATEWAY_PORT, host: config.GATEWAY_HOST });
  const webhooks = config.GATEWAY_WEBHOOK_URL ?? 'nowhere (GATEWAY_WEBHOOK_URL unset)';
  console.log(`Seatlock gateway simulator on ${await app.getUrl()}, webhooks to ${webhooks}`);
}

bootstrap().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
