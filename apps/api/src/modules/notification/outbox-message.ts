/** A fact to announce after commit; the outbox dispatcher fans it out to the channels. */
export interface OutboxMessage {
  topic: string;
  customerId: string | null;
  aggregateId: string | null;
  payload: Record<string, unknown>;
}
