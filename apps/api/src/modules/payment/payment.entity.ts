import { Column, Entity, PrimaryColumn } from 'typeorm';

export type PaymentStatus =
  'pending' | 'authorized' | 'captured' | 'voided' | 'refunded' | 'failed';

/** What is still owed to the gateway; decided in the transaction that decided it. */
export type PaymentAction = 'authorize' | 'confirm' | 'capture' | 'void' | 'refund';

@Entity({ name: 'payments' })
export class PaymentEntity {
  @PrimaryColumn('uuid')
  id: string;

  @Column({ name: 'booking_id', type: 'uuid' })
  bookingId: string;

  @Column({ name: 'customer_id', type: 'uuid' })
  customerId: string;

  @Column('text')
  status: PaymentStatus;

  @Column({ name: 'next_action', type: 'text', nullable: true })
  nextAction: PaymentAction | null;

  @Column({ name: 'amount_cents', type: 'bigint' })
  amountCents: string;

  @Column({ name: 'refunded_cents', type: 'bigint' })
  refundedCents: string;

  @Column({ type: 'char', length: 3 })
  currency: string;

  @Column({ name: 'payment_method', type: 'text' })
  paymentMethod: string;

  /** The booking's fencing token when the payment started: the confirm must still match it. */
  @Column({ type: 'bigint' })
  fence: string;

  @Column({ name: 'gateway_idempotency_key', type: 'text' })
  gatewayIdempotencyKey: string;

  @Column({ name: 'gateway_intent_id', type: 'text', nullable: true })
  gatewayIntentId: string | null;

  @Column({ name: 'failure_code', type: 'text', nullable: true })
  failureCode: string | null;

  @Column({ name: 'failure_message', type: 'text', nullable: true })
  failureMessage: string | null;

  @Column('integer')
  attempts: number;

  @Column({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;

  @Column({ name: 'updated_at', type: 'timestamptz' })
  updatedAt: Date;
}
