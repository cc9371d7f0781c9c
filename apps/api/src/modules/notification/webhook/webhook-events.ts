import { NOTIFICATION_TOPICS } from '../notification-topics';

/** The outbound webhook event types (DESIGN.md); an endpoint subscribes to some or `*` for all. */
export const WEBHOOK_EVENT_TYPES = NOTIFICATION_TOPICS;

export const ALL_WEBHOOK_EVENTS = '*';
