import { Column, CreateDateColumn, Entity, PrimaryColumn } from 'typeorm';

export interface SectionSpec {
  name: string;
  rows: number;
  seatsPerRow: number;
  priceCents: number;
}

@Entity({ name: 'events' })
export class EventEntity {
  @PrimaryColumn('uuid')
  id: string;

  @Column('text')
  name: string;

  @Column('text')
  venue: string;

  @Column({ name: 'starts_at', type: 'timestamptz' })
  startsAt: Date;

  @Column({ type: 'char', length: 3 })
  currency: string;

  @Column('jsonb')
  sections: SectionSpec[];

  @Column({ name: 'seat_count', type: 'integer' })
  seatCount: number;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;
}
