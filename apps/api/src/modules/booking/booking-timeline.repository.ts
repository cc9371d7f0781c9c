import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import type { TimelineEntryDto } from './dto/timeline-entry.dto';

interface TimelineRow {
  type: string;
  at: Date;
  detail: string;
}

/**
 * The booking_timeline table, for reading. Entries are written by the statement of the change they
 * record (seatlock_record_booking_event), never on their own.
 */
@Injectable()
export class BookingTimelineRepository {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  /** A booking's timeline, oldest first. */
  async list(bookingId: string): Promise<TimelineEntryDto[]> {
    const rows = await this.dataSource.query<TimelineRow[]>(
      `SELECT type, at, detail FROM booking_timeline WHERE booking_id = $1 ORDER BY id`,
      [bookingId],
    );
    return rows.map((row) => ({ type: row.type, at: row.at.toISOString(), detail: row.detail }));
  }
}
