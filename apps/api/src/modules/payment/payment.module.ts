import { Module } from '@nestjs/common';
import { IdempotencyInterceptor } from '../../common/idempotency/idempotency.interceptor';
import { IdempotencyService } from '../../common/idempotency/idempotency.service';
import { LockProviderModule } from '../../lock/lock-provider.module';
import { MetricsModule } from '../../metrics/metrics.module';
import { BookingModule } from '../booking/booking.module';
import { GatewayWebhookController } from './gateway-webhook.controller';
import { GatewayWebhookService } from './gateway-webhook.service';
import { HttpPaymentGateway } from './gateway/http-payment-gateway';
import { PaymentGateway } from './gateway/payment-gateway';
import { PaymentController } from './payment.controller';
import { PaymentMetrics } from './payment.metrics';
import { PaymentReconcilerService } from './payment-reconciler.service';
import { PaymentService } from './payment.service';

@Module({
  imports: [BookingModule, MetricsModule, LockProviderModule],
  controllers: [PaymentController, GatewayWebhookController],
  providers: [
    PaymentService,
    PaymentMetrics,
    GatewayWebhookService,
    PaymentReconcilerService,
    IdempotencyService,
    IdempotencyInterceptor,
    { provide: PaymentGateway, useClass: HttpPaymentGateway },
  ],
  exports: [PaymentService],
})
export class PaymentModule {}
