import { Column, Entity, PrimaryColumn } from 'typeorm';

export type SeatStatus = 'free' | 'held' | 'booked';

@Entity({ name: 'seats' })
export class SeatEntity {
  @PrimaryColumn({ name: 'event_id', type: 'uuid' })
  eventId: string;

  @PrimaryColumn('text')
  label: string;

  @Column('text')
  section: string;

  /** Order of the seat in the event's seat map. */
  @Column('integer')
  position: number;

  @Column({ name: 'price_cents', type: 'integer' })
  priceCents: number;

  @Column('text')
  status: SeatStatus;

  @Column({ name: 'booking_id', type: 'uuid', nullable: true })
  bookingId: string | null;

  @Column({ name: 'held_until', type: 'timestamptz', nullable: true })
  heldUntil: Date | null;

  /** Fencing token of the lease that last wrote this row (bigint, as a decimal string). */
  @Column({ type: 'bigint' })
  fence: string;
}
