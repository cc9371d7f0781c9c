import { Module } from '@nestjs/common';
import { LockProviderModule } from '../../lock/lock-provider.module';
import { MetricsModule } from '../../metrics/metrics.module';
import { AdminOutboxController } from './admin-outbox.controller';
import { DeliveryWorkerService } from './delivery-worker.service';
import { DeliveryRepository } from './delivery.repository';
import { EmailTransport } from './email/email-transport.service';
import { EmailChannel } from './email/email.channel';
import { InAppNotificationRepository } from './in-app-notification.repository';
import { InAppNotificationService } from './in-app-notification.service';
import { InAppChannel } from './in-app.channel';
import { NotificationController } from './notification.controller';
import { NotificationMetrics } from './notification.metrics';
import { NotificationService } from './notification.service';
import { OUTBOX_CHANNELS } from './outbox-channel';
import { OutboxAdminService } from './outbox-admin.service';
import { OutboxDispatcherService } from './outbox-dispatcher.service';
import { OutboxRepository } from './outbox.repository';
import { WebhookEndpointController } from './webhook/webhook-endpoint.controller';
import { WebhookEndpointRepository } from './webhook/webhook-endpoint.repository';
import { WebhookEndpointService } from './webhook/webhook-endpoint.service';
import { WebhookChannel } from './webhook/webhook.channel';

/**
 * The outbox (enqueue, in the callers' transactions), its dispatcher and the channels. Webhook and
 * email channels join OUTBOX_CHANNELS as further delivery writers; the delivery worker sends what
 * they wrote.
 */
@Module({
  imports: [MetricsModule, LockProviderModule],
  controllers: [NotificationController, AdminOutboxController, WebhookEndpointController],
  providers: [
    NotificationService,
    NotificationMetrics,
    OutboxRepository,
    OutboxDispatcherService,
    OutboxAdminService,
    InAppNotificationRepository,
    InAppNotificationService,
    InAppChannel,
    DeliveryRepository,
    DeliveryWorkerService,
    WebhookEndpointRepository,
    WebhookEndpointService,
    WebhookChannel,
    EmailTransport,
    EmailChannel,
    {
      provide: OUTBOX_CHANNELS,
      inject: [InAppChannel, EmailChannel, WebhookChannel],
      useFactory: (inApp: InAppChannel, email: EmailChannel, webhook: WebhookChannel) => [
        inApp,
        email,
        webhook,
      ],
    },
  ],
  exports: [NotificationService],
})
export class NotificationModule {}
