import type { INestApplication } from '@nestjs/common';
import { DocumentBuilder, type OpenAPIObject, SwaggerModule } from '@nestjs/swagger';

/**
 * The API's OpenAPI document: what /docs-json serves (createApp) and what the seat-map page's typed
 * client is generated from (write-openapi-document), built in one place so the two cannot drift.
 */
export function createOpenApiDocument(app: INestApplication): OpenAPIObject {
  const config = new DocumentBuilder()
    .setTitle('Seatlock')
    .setDescription(
      'Seat booking that cannot double-book: Redis keeps contenders away, PostgreSQL decides. ' +
        'Errors are application/problem+json with a stable `code`.',
    )
    .setVersion('0.1.0')
    .addBearerAuth({
      type: 'http',
      scheme: 'bearer',
      bearerFormat: 'opaque',
      description: 'A customer token from POST /customers, or the admin token for /admin routes',
    })
    .build();
  return SwaggerModule.createDocument(app, config);
}
