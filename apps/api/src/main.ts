import 'reflect-metadata';
import { existsSync } from 'node:fs';
import { createApp } from './app.factory';
import { randomSecret } from './config/run-secrets';
import { validateEnvironment } from './config/validate-environment';
import { LOCAL_DATABASE_URL, resolveDatabase } from './database/local-database';
import { PaymentGatewayProcess } from './payment-gateway-process';

async function bootstrap(): Promise<void> {
  // The .env that the config module reads, loaded now so the choices below see it too; the real
  // environment still wins.
  if (existsSync('.env')) process.loadEnvFile('.env');
  // Fail fast, before any server starts; DATABASE_URL may still be filled in below.
  const config = validateEnvironment({ DATABASE_URL: LOCAL_DATABASE_URL, ...process.env });
  const database = await resolveDatabase();
  const port = Number(process.env.PORT ?? 3000);
  // No gateway named: run the simulator beside the API, so payments work out of the box, sharing
  // the webhook secret (made up for this run when none is set: no secret has a default).
  const local = !process.env.GATEWAY_URL;
  const webhookSecret =
    config.GATEWAY_WEBHOOK_SECRET ?? (local ? randomSecret('whsec') : undefined);
  const gateway =
    local && webhookSecret
      ? await PaymentGatewayProcess.startForApi({
          apiPort: port,
          databaseUrl: database.url,
          webhookSecret,
        }).then((started) => started.stopOnExit())
      : undefined;
  if (gateway) {
    console.log(
      `Local gateway simulator (pid ${gateway.pid}) on ${gateway.url}: GATEWAY_URL unset`,
    );
  }
  const app = await createApp({
    DATABASE_URL: database.url,
    ...(gateway ? { GATEWAY_URL: gateway.url } : {}),
    ...(webhookSecret ? { GATEWAY_WEBHOOK_SECRET: webhookSecret } : {}),
  });
  if (gateway) {
    // Stopped when the API closes (SIGTERM, SIGINT), and awaited: its port is free once we exit.
    app
      .getHttpAdapter()
      .getInstance()
      .addHook('onClose', () => gateway.stop());
  }
  if (database.stop) {
    const stop = database.stop;
    process.once('beforeExit', () => void stop());
  }
  await app.listen({ port, host: process.env.HOST ?? '0.0.0.0' });
  const url = await app.getUrl();
  console.log(`Seatlock API on ${url} (Swagger ${url}/docs), database from ${database.source}`);
}

bootstrap().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
