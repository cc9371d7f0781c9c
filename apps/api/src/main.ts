import 'reflect-metadata';
import { createApp } from './app.factory';
import { validateEnvironment } from './config/validate-environment';
import { LOCAL_DATABASE_URL, resolveDatabase } from './database/local-database';

async function bootstrap(): Promise<void> {
  // Fail fast, before any server starts; DATABASE_URL may still be filled in below.
  validateEnvironment({ DATABASE_URL: LOCAL_DATABASE_URL, ...process.env });
  const database = await resolveDatabase();
  const app = await createApp({ DATABASE_URL: database.url });
  if (database.stop) {
    const stop = database.stop;
    process.once('beforeExit', () => void stop());
  }
  const port = Number(process.env.PORT ?? 3000);
  await app.listen({ port, host: process.env.HOST ?? '0.0.0.0' });
  const url = await app.getUrl();
  console.log(`Seatlock API on ${url} (Swagger ${url}/docs), database from ${database.source}`);
}

bootstrap().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
