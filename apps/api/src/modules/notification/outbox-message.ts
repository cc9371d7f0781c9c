/** A fact to announce after commit (the dispatcher that sends these comes with notifications). */
export interface OutboxMessage {
  topic: string;
  customerId: string | null;
  aggregateId: string | null;
  payload: Record<string, unknown>;
}
