import { type DynamicModule, Module, RequestMethod, ValidationPipe } from '@nestjs/common';
import { APP_FILTER, APP_GUARD, APP_PIPE } from '@nestjs/core';
import { ScheduleModule } from '@nestjs/schedule';
import { LoggerModule } from 'nestjs-pino';
import { RequestValidationError } from './common/errors/request-validation.error';
import { ProblemDetailsFilter } from './common/filters/problem-details.filter';
import { AppConfigModule } from './config/app-config.module';
import { AppConfigService } from './config/app-config.service';
import { DatabaseModule } from './database/database.module';
import { HealthModule } from './health/health.module';
import { MetricsModule } from './metrics/metrics.module';
import { BookingModule } from './modules/booking/booking.module';
import { CatalogModule } from './modules/catalog/catalog.module';
import { BearerAuthGuard } from './modules/customer/bearer-auth.guard';
import { CustomerModule } from './modules/customer/customer.module';
import { NotificationModule } from './modules/notification/notification.module';
import { PaymentModule } from './modules/payment/payment.module';
import { StreamModule } from './modules/stream/stream.module';
import { WebModule } from './modules/web/web.module';
import { RateLimitModule } from './common/rate-limit/rate-limit.module';

/**
 * The module graph. Dependencies point one way: payment → booking → catalog, stream → catalog,
 * everything → notification;
 * customer provides the bearer guard for all. `env` overrides the environment (tests use it).
 */
@Module({})
export class AppModule {
  static forRoot(env: Record<string, string> = {}): DynamicModule {
    return {
      module: AppModule,
      imports: [
        AppConfigModule.forRoot(env),
        LoggerModule.forRootAsync({
          inject: [AppConfigService],
          useFactory: (config: AppConfigService) => ({
            forRoutes: [{ path: '{*splat}', method: RequestMethod.ALL }],
            pinoHttp: {
              level: config.get('LOG_LEVEL'),
              // Serialized into every request's child logger, whether or not a line is written:
              // only what identifies the request. No header is logged, so a bearer token or an
              // Idempotency-Key cannot reach the logs, and nothing needs redacting per request.
              serializers: {
                req: (req: {
                  id: unknown;
                  method: string;
                  url: string;
                  remoteAddress?: string;
                }) => ({
                  id: req.id,
                  method: req.method,
                  url: req.url,
                  remoteAddress: req.remoteAddress,
                }),
              },
              // A lost seat race (409) or a bad request is business as usual, not a warning; a
              // 503 is load shed on purpose (Retry-After), its cause logged where it is decided.
              customLogLevel: (_request, response, error) =>
                error || (response.statusCode >= 500 && response.statusCode !== 503)
                  ? 'error'
                  : [401, 403, 429, 503].includes(response.statusCode)
                    ? 'warn'
                    : 'info',
            },
          }),
        }),
        ScheduleModule.forRoot(),
        DatabaseModule,
        MetricsModule,
        RateLimitModule,
        NotificationModule,
        CustomerModule,
        CatalogModule,
        BookingModule,
        PaymentModule,
        StreamModule,
        WebModule,
        HealthModule,
      ],
      providers: [
        {
          provide: APP_PIPE,
          useFactory: () =>
            new ValidationPipe({
              whitelist: true,
              forbidNonWhitelisted: true,
              transform: true,
              forbidUnknownValues: true,
              validationError: { target: false, value: false },
              exceptionFactory: (errors) => RequestValidationError.fromClassValidator(errors),
            }),
        },
        { provide: APP_FILTER, useClass: ProblemDetailsFilter },
        // Authentication and rate limits in one guard: see BearerAuthGuard.
        { provide: APP_GUARD, useClass: BearerAuthGuard },
      ],
    };
  }
}
