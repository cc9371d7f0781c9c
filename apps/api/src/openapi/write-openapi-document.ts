import 'reflect-metadata';
import { writeFileSync } from 'node:fs';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { AppModule } from '../app.module';
import { LOCAL_DATABASE_URL } from '../database/local-database';
import { createOpenApiDocument } from './openapi-document';

/**
 * `node dist/.../openapi/write-openapi-document.js <file>`: writes the built app's OpenAPI document
 * (the one /docs-json serves) as JSON, for `npm run generate:api-types` and `check:api-types`.
 *
 * Nest's preview mode resolves the module graph without creating any provider, so nothing connects
 * to PostgreSQL or Redis and nothing listens. It must run from dist: the Swagger CLI plugin that fills
 * the DTO schemas runs in `nest build`, not under tsx or Jest.
 */
async function main(): Promise<void> {
  const file = process.argv[2];
  if (!file) throw new Error('Usage: write-openapi-document.js <output.json>');
  // The configuration is still validated when the module graph is built; never used to connect.
  const app = await NestFactory.create(
    AppModule.forRoot({ DATABASE_URL: LOCAL_DATABASE_URL }),
    new FastifyAdapter(),
    { preview: true, logger: false, abortOnError: false },
  );
  try {
    writeFileSync(file, `${JSON.stringify(createOpenApiDocument(app), null, 2)}\n`);
  } finally {
    await app.close();
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
