import { Injectable } from '@nestjs/common';
import { Counter, Registry } from 'prom-client';

/** What happened to payments, and to calls at the gateway. */
@Injectable()
export class PaymentMetrics {
  readonly outcomes: Counter<'outcome'>;
  readonly gatewayFailures: Counter<'operation'>;
  readonly reconciled: Counter<'action'>;

  constructor(registry: Registry) {
    this.outcomes = new Counter({
      name: 'seatlock_payments_total',
      help: 'Payments by outcome: captured, declined, seat_lost (voided or refunded), refunded, …',
      labelNames: ['outcome'],
      registers: [registry],
    });
    this.gatewayFailures = new Counter({
      name: 'seatlock_gateway_failures_total',
      help: 'Gateway calls that failed after their retries, by operation',
      labelNames: ['operation'],
      registers: [registry],
    });
    this.reconciled = new Counter({
      name: 'seatlock_payments_reconciled_total',
      help: 'Payment steps finished by the reconciler (after a crash or a gateway outage)',
      labelNames: ['action'],
      registers: [registry],
    });
  }
}
