import { type DynamicModule, Module, RequestMethod, ValidationPipe } from '@nestjs/common';
import { APP_FILTER, APP_PIPE } from '@nestjs/core';
import { LoggerModule } from 'nestjs-pino';
import { GatewayErrorFilter } from './common/gateway-error.filter';
import { validationErrorFactory } from './common/validation-error.factory';
import { GatewayEnvironment } from './config/gateway-environment';
import { GatewayDatabase } from './database/gateway-database';
import { HealthController } from './health/health.controller';
import { IdempotencyService } from './idempotency/idempotency.service';
import { AsyncAuthorizationWorker } from './payment-intents/async-authorization.worker';
import { PaymentIntentsController } from './payment-intents/payment-intents.controller';
import { PaymentIntentsService } from './payment-intents/payment-intents.service';
import { RefundsController } from './refunds/refunds.controller';
import { RefundsService } from './refunds/refunds.service';
import { WebhookDispatcher } from './webhooks/webhook-dispatcher';
import { WebhookOutbox } from './webhooks/webhook-outbox';

/**
 * The whole simulator in one module: it is small, and a test double should be read in one go. The
 * validated settings are provided as `GatewayEnvironment`, so several instances with different
 * settings can run in one process (tests do).
 */
@Module({})
export class GatewayModule {
  static forRoot(config: GatewayEnvironment): DynamicModule {
    return {
      module: GatewayModule,
      imports: [
        LoggerModule.forRoot({
          forRoutes: [{ path: '{*splat}', method: RequestMethod.ALL }],
          pinoHttp: { level: config.GATEWAY_LOG_LEVEL, redact: ['req.headers["idempotency-key"]'] },
        }),
      ],
      controllers: [PaymentIntentsController, RefundsController, HealthController],
      providers: [
        { provide: GatewayEnvironment, useValue: config },
        GatewayDatabase,
        IdempotencyService,
        WebhookOutbox,
        WebhookDispatcher,
        PaymentIntentsService,
        AsyncAuthorizationWorker,
        RefundsService,
        {
          provide: APP_PIPE,
          useFactory: () =>
            new ValidationPipe({
              whitelist: true,
              forbidNonWhitelisted: true,
              transform: true,
              forbidUnknownValues: true,
              stopAtFirstError: true,
              exceptionFactory: validationErrorFactory,
            }),
        },
        { provide: APP_FILTER, useClass: GatewayErrorFilter },
      ],
    };
  }
}
