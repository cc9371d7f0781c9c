import { Column, CreateDateColumn, Entity, PrimaryColumn, UpdateDateColumn } from 'typeorm';

export type BookingStatus = 'held' | 'confirmed' | 'released' | 'expired' | 'cancelled';

@Entity({ name: 'bookings' })
export class BookingEntity {
  @PrimaryColumn('uuid')
  id: string;

  @Column({ name: 'customer_id', type: 'uuid' })
  customerId: string;

  @Column({ name: 'event_id', type: 'uuid' })
  eventId: string;

  @Column('text')
  status: BookingStatus;

  @Column({ name: 'seat_labels', type: 'text', array: true })
  seatLabels: string[];

  /** bigint column: PostgreSQL sends it as a string. */
  @Column({ name: 'amount_cents', type: 'bigint' })
  amountCents: string;

  @Column({ type: 'char', length: 3 })
  currency: string;

  @Column({ name: 'expires_at', type: 'timestamptz' })
  expiresAt: Date;

  @Column({ type: 'bigint' })
  fence: string;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt: Date;
}
