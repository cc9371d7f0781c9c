import { Column, Entity, PrimaryColumn } from 'typeorm';

export type OutboxStatus = 'pending' | 'sent' | 'dead';

/** A fact to announce, written in the same transaction as the change it describes. */
@Entity({ name: 'outbox_messages' })
export class OutboxMessageEntity {
  @PrimaryColumn('uuid')
  id: string;

  @Column('text')
  topic: string;

  @Column({ name: 'customer_id', type: 'uuid', nullable: true })
  customerId: string | null;

  @Column({ name: 'aggregate_id', type: 'uuid', nullable: true })
  aggregateId: string | null;

  @Column('jsonb')
  payload: Record<string, unknown>;

  @Column('text')
  status: OutboxStatus;

  @Column('integer')
  attempts: number;

  @Column({ name: 'available_at', type: 'timestamptz' })
  availableAt: Date;

  @Column({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;

  /** The claim (lease) of the dispatcher working on it; a crashed claimer's lease runs out. */
  @Column({ name: 'claimed_by', type: 'uuid', nullable: true })
  claimedBy: string | null;

  @Column({ name: 'claimed_until', type: 'timestamptz', nullable: true })
  claimedUntil: Date | null;

  @Column({ name: 'last_error', type: 'text', nullable: true })
  lastError: string | null;

  @Column({ name: 'dispatched_at', type: 'timestamptz', nullable: true })
  dispatchedAt: Date | null;

  /** The instance that dispatched it (host:pid), for operators. */
  @Column({ name: 'dispatched_by', type: 'text', nullable: true })
  dispatchedBy: string | null;
}
