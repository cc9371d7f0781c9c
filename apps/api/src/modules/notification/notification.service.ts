import { Injectable } from '@nestjs/common';
import { OutboxDispatcherService } from './outbox-dispatcher.service';

/**
 * The notification module's facade. Other modules write an outbox message in the statement of the
 * change it announces (`seatlock_outbox_enqueue`, through `seatlock_record_booking_event`), so it
 * exists exactly when the change committed; nothing is sent from inside. No NOTIFY goes into that
 * statement (it would serialize every commit in the cluster): the writer calls `committed()` once
 * its statement returned, which wakes this instance's dispatcher, and the poll covers the rest.
 */
@Injectable()
export class NotificationService {
  constructor(private readonly dispatcher: OutboxDispatcherService) {}

  /** After a statement that wrote outbox rows committed. */
  committed(): void {
    this.dispatcher.wake();
  }
}
