/** An in-app notification: one booking or payment transition, in plain words. */
export class NotificationDto {
  /** Notification id (UUID). */
  id: string;

  /** The outbox topic it reports, e.g. `booking.confirmed` or `payment.voided`. */
  type: string;

  /** The booking concerned. */
  bookingId: string | null;

  title: string;

  body: string;

  /** When the transition committed. */
  createdAt: string;

  /** When the customer marked it read; null while unread. */
  readAt: string | null;
}
