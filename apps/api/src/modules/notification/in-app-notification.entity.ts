import { Column, Entity, PrimaryColumn } from 'typeorm';

/** What the customer sees in the app: one per outbox message that concerns them. */
@Entity({ name: 'notifications' })
export class InAppNotificationEntity {
  @PrimaryColumn('uuid')
  id: string;

  @Column({ name: 'message_id', type: 'uuid', unique: true })
  messageId: string;

  @Column({ name: 'customer_id', type: 'uuid' })
  customerId: string;

  @Column({ name: 'booking_id', type: 'uuid', nullable: true })
  bookingId: string | null;

  @Column('text')
  type: string;

  @Column('text')
  title: string;

  @Column('text')
  body: string;

  @Column({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;

  @Column({ name: 'read_at', type: 'timestamptz', nullable: true })
  readAt: Date | null;
}
