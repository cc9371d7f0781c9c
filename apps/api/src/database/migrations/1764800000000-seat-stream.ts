import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The live seat stream's source. A statement-level trigger on `seats` records every status change
 * (whichever path made it: hold, release, expiry, confirm, cancel, GA units) as a `seat_changes`
 * row in the same transaction, so nothing committed is missed and nothing rolled back is shown.
 *
 * Order: a change to a seat waited for the previous change's commit (the row lock), so its row's id
 * is larger. Taking every committed row in id order therefore gives each seat its changes in commit
 * order, batch after batch, as long as one batch is taken at a time: `seatlock_stream_batch` takes
 * a transaction-level advisory lock first, so even instances that all run it (Redis down) take
 * turns. It numbers the messages per event (`seat_streams.seq`, one message per transaction) and
 * deletes the rows it returns.
 */
export class SeatStream1764800000000 implements MigrationInterface {
  name = 'SeatStream1764800000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE seat_changes (
        id bigserial PRIMARY KEY,
        event_id uuid NOT NULL,
        xact xid8 NOT NULL DEFAULT pg_current_xact_id(),
        changes jsonb NOT NULL
      )`);
    await queryRunner.query(`
      CREATE TABLE seat_streams (
        event_id uuid PRIMARY KEY REFERENCES events (id) ON DELETE CASCADE,
        seq bigint NOT NULL
      )`);

    // changes: [{label, status, unit}] in seat order; unit = a GA unit (no row), shown only by
    // its section's count.
    await queryRunner.query(`
      CREATE FUNCTION seatlock_record_seat_changes() RETURNS trigger
      LANGUAGE plpgsql AS $$
      BEGIN
        INSERT INTO seat_changes (event_id, changes)
        SELECT n.event_id,
               jsonb_agg(jsonb_build_object('label', n.label, 'status', n.status,
                                            'unit', n.row_name IS NULL) ORDER BY n.position)
          FROM new_seats n JOIN old_seats o ON o.event_id = n.event_id AND o.label = n.label
         WHERE o.status <> n.status
         GROUP BY n.event_id;
        RETURN NULL;
      END
      $$`);
    await queryRunner.query(`
      CREATE TRIGGER seats_record_changes AFTER UPDATE ON seats
        REFERENCING OLD TABLE AS old_seats NEW TABLE AS new_seats
        FOR EACH STATEMENT EXECUTE FUNCTION seatlock_record_seat_changes()`);

    // Every section of an event with the units free to hold now (a lapsed hold counts as free),
    // in section order: what GET /events/{id} shows as available.
    await queryRunner.query(`
      CREATE FUNCTION seatlock_sections_available(p_event uuid) RETURNS jsonb
      LANGUAGE sql STABLE AS $$
        SELECT coalesce(jsonb_agg(jsonb_build_object('name', section, 'available', free)
                                  ORDER BY first_position), '[]'::jsonb)
          FROM (SELECT section, min(position) AS first_position,
                       count(*) FILTER (WHERE status = 'free'
                                           OR (status = 'held' AND held_until <= now()))::int AS free
                  FROM seats WHERE event_id = p_event GROUP BY section) s
      $$`);

    // Each seated seat's status as GET /events/{id}/seats shows it (a lapsed hold is free), one
    // letter per seat (f, h, b) in seat order: the seat list and the stream's snapshot read it.
    await queryRunner.query(`
      CREATE FUNCTION seatlock_seat_statuses(p_event uuid) RETURNS text
      LANGUAGE sql STABLE AS $$
        SELECT coalesce(string_agg(left(CASE WHEN status = 'held' AND held_until <= now()
                                             THEN 'free' ELSE status END, 1), ''
                                   ORDER BY position), '')
          FROM seats WHERE event_id = p_event AND row_name IS NOT NULL
      $$`);

    // Takes up to p_limit changes, oldest first, as numbered messages: one per (event,
    // transaction), seq counting on from seat_streams. Rows are deleted as they are returned.
    await queryRunner.query(`
      CREATE FUNCTION seatlock_stream_batch(p_limit integer)
      RETURNS TABLE (event_id uuid, seq bigint, changes jsonb, sections jsonb)
      LANGUAGE plpgsql AS $$
      #variable_conflict use_column
      BEGIN
        PERFORM pg_advisory_xact_lock(hashtextextended('seatlock_stream_batch', 0));
        RETURN QUERY
        WITH taken AS (
          DELETE FROM seat_changes c
           WHERE c.id IN (SELECT id FROM seat_changes ORDER BY id LIMIT p_limit)
          RETURNING c.id, c.event_id, c.xact, c.changes
        ), messages AS (
          SELECT t.event_id, min(t.id) AS first_id,
                 jsonb_agg(change ORDER BY t.id, ordinal) AS changes
            FROM taken t, jsonb_array_elements(t.changes) WITH ORDINALITY AS e(change, ordinal)
           GROUP BY t.event_id, t.xact
        ), numbered AS (
          SELECT m.*, row_number() OVER (PARTITION BY m.event_id ORDER BY m.first_id) AS n,
                 count(*) OVER (PARTITION BY m.event_id) AS total
            FROM messages m
        ), counted AS (
          INSERT INTO seat_streams AS s (event_id, seq)
          SELECT DISTINCT n.event_id, n.total FROM numbered n
            JOIN events e ON e.id = n.event_id
          ON CONFLICT ON CONSTRAINT seat_streams_pkey DO UPDATE SET seq = s.seq + EXCLUDED.seq
          RETURNING s.event_id, s.seq
        )
        SELECT n.event_id, c.seq - n.total + n.n, n.changes,
               seatlock_sections_available(n.event_id)
          FROM numbered n JOIN counted c ON c.event_id = n.event_id
         ORDER BY n.event_id, n.n;
      END
      $$`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP FUNCTION IF EXISTS seatlock_stream_batch`);
    await queryRunner.query(`DROP FUNCTION IF EXISTS seatlock_seat_statuses`);
    await queryRunner.query(`DROP FUNCTION IF EXISTS seatlock_sections_available`);
    await queryRunner.query(`DROP TRIGGER IF EXISTS seats_record_changes ON seats`);
    await queryRunner.query(`DROP FUNCTION IF EXISTS seatlock_record_seat_changes`);
    await queryRunner.query(`DROP TABLE IF EXISTS seat_streams`);
    await queryRunner.query(`DROP TABLE IF EXISTS seat_changes`);
  }
}
