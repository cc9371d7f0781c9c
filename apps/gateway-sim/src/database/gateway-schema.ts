/**
 * The simulator's tables, in their own schema so they live beside the API's without touching them.
 * Idempotent, and run under an advisory lock: two instances starting at once would otherwise race on
 * PostgreSQL's catalog (CREATE … IF NOT EXISTS is not safe against a concurrent twin).
 */
export const GATEWAY_SCHEMA_SQL = `
SELECT pg_advisory_xact_lock(hashtext('gateway_sim.schema'));
CREATE SCHEMA IF NOT EXISTS gateway_sim;

CREATE TABLE IF NOT EXISTS gateway_sim.payment_intents (
  id                 text PRIMARY KEY,
  seq                bigserial NOT NULL UNIQUE,
  amount             integer NOT NULL,
  amount_capturable  integer NOT NULL DEFAULT 0,
  amount_received    integer NOT NULL DEFAULT 0,
  amount_refunded    integer NOT NULL DEFAULT 0,
  currency           text NOT NULL,
  status             text NOT NULL,
  payment_method     text NOT NULL,
  capture_method     text NOT NULL,
  metadata           jsonb NOT NULL DEFAULT '{}',
  last_payment_error jsonb,
  async_ready_at     timestamptz,
  canceled_at        timestamptz,
  created_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS payment_intents_async_due
  ON gateway_sim.payment_intents (async_ready_at) WHERE status = 'processing';

CREATE TABLE IF NOT EXISTS gateway_sim.refunds (
  id             text PRIMARY KEY,
  payment_intent text NOT NULL REFERENCES gateway_sim.payment_intents (id),
  amount         integer NOT NULL,
  currency       text NOT NULL,
  status         text NOT NULL,
  created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS refunds_payment_intent ON gateway_sim.refunds (payment_intent);

CREATE TABLE IF NOT EXISTS gateway_sim.idempotency_keys (
  key          text PRIMARY KEY,
  request_hash text NOT NULL,
  status_code  integer,
  body         jsonb,
  created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS gateway_sim.flaky_attempts (
  key        text PRIMARY KEY,
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS gateway_sim.webhook_deliveries (
  id              bigserial PRIMARY KEY,
  event_id        text NOT NULL,
  event_type      text NOT NULL,
  url             text NOT NULL,
  payload         text NOT NULL,
  attempts        integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  locked_until    timestamptz,
  delivered_at    timestamptz,
  failed_at       timestamptz,
  last_error      text,
  created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS webhook_deliveries_due
  ON gateway_sim.webhook_deliveries (next_attempt_at) WHERE delivered_at IS NULL AND failed_at IS NULL;
`;
