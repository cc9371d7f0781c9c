-- A booking as the API shows it (BookingDto), for outbox payloads and answers written inside SQL.
CREATE OR REPLACE FUNCTION seatlock_booking_json(b bookings) RETURNS jsonb
LANGUAGE sql STABLE AS $$
  SELECT jsonb_build_object(
    'id', b.id, 'status', b.status, 'eventId', b.event_id, 'seats', to_jsonb(b.seat_labels),
    'amountCents', b.amount_cents, 'currency', b.currency,
    'expiresAt', to_char(b.expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
    'fencingToken', b.fence::text,
    'createdAt', to_char(b.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
$$;
