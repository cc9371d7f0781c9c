import { Module } from '@nestjs/common';
import { IdempotencyInterceptor } from '../../common/idempotency/idempotency.interceptor';
import { IdempotencyRepository } from '../../common/idempotency/idempotency.repository';
import { LockProviderModule } from '../../lock/lock-provider.module';
import { MetricsModule } from '../../metrics/metrics.module';
import { BookingModule } from '../booking/booking.module';
import { NotificationModule } from '../notification/notification.module';
import { GatewayWebhookController } from './gateway-webhook.controller';
import { GatewayWebhookService } from './gateway-webhook.service';
import { HttpPaymentGateway } from './gateway/http-payment-gateway';
import { PaymentGateway } from './gateway/payment-gateway';
import { PaymentController } from './payment.controller';
import { PaymentMetrics } from './payment.metrics';
import { PaymentReconcilerService } from './payment-reconciler.service';
import { PaymentRepository } from './payment.repository';
import { PaymentService } from './payment.service';
import { PaymentWorkflowService } from './payment-workflow.service';

@Module({
  imports: [BookingModule, NotificationModule, MetricsModule, LockProviderModule],
  controllers: [PaymentController, GatewayWebhookController],
  providers: [
    PaymentService,
    PaymentRepository,
    PaymentWorkflowService,
    PaymentMetrics,
    GatewayWebhookService,
    PaymentReconcilerService,
    IdempotencyRepository,
    IdempotencyInterceptor,
    { provide: PaymentGateway, useClass: HttpPaymentGateway },
  ],
  exports: [PaymentService],
})
export class PaymentModule {}
