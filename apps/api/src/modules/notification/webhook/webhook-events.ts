import { NOTIFICATION_TOPICS } from '../notification-topics';

/** The outbound webhook event types (the notification topics); an endpoint takes some or `*`. */
export const WEBHOOK_EVENT_TYPES = NOTIFICATION_TOPICS;

export const ALL_WEBHOOK_EVENTS = '*';
