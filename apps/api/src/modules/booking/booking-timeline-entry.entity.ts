import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';

@Entity({ name: 'booking_timeline' })
export class BookingTimelineEntryEntity {
  @PrimaryGeneratedColumn({ type: 'bigint' })
  id: string;

  @Column({ name: 'booking_id', type: 'uuid' })
  bookingId: string;

  @Column('text')
  type: string;

  @Column('text')
  detail: string;

  @Column({ type: 'timestamptz' })
  at: Date;
}
